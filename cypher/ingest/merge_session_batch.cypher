// mode: write
// params: $dataset, $users (distinct user ids of the batch), $rows (list of [user position in $users, id, start, end, size])
// Sessions and their owner, idempotent; each user is looked up once per batch (a missing one fails the batch).
UNWIND $users AS id
OPTIONAL MATCH (u:User {id: id})
WITH collect([u]) AS users
UNWIND $rows AS row
WITH users[row[0]][0] AS u, row
MERGE (s:Session {id: row[1]})
SET s.dataset = $dataset, s.start = row[2], s.end = row[3], s.size = row[4]
MERGE (u)-[:HAS_SESSION]->(s)
