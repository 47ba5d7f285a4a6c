// mode: write
// params: $dataset, $users (distinct user ids of the batch), $rows (list of [user position in $users, id, start, end, size])
// Fast path for a dataset with no Session nodes yet: each user is looked up once per batch; a user that is not
// there makes the batch fail (CREATE of a relationship to null), never a silently skipped or misplaced row.
UNWIND $users AS id
OPTIONAL MATCH (u:User {id: id})
WITH collect([u]) AS users
UNWIND $rows AS row
WITH users[row[0]][0] AS u, row
CREATE (u)-[:HAS_SESSION]->(:Session {id: row[1], dataset: $dataset, start: row[2], end: row[3], size: row[4]})
