// mode: write
// params: $users, $items (distinct ids of the batch), $rows (list of [user position in $users, item position in $items, pos, ts, rating, behavior])
// INTERACTED edges, batch by batch: each endpoint is looked up once per batch, rows are plain lists; a node that
// is not there makes the batch fail (a relationship to null), never a silently skipped or misplaced row.
// Fast path for a dataset with no such edges yet (the writer checks first): CREATE instead of MERGE.
UNWIND $users AS id
OPTIONAL MATCH (u:User {id: id})
WITH collect([u]) AS users
UNWIND $items AS id
OPTIONAL MATCH (i:Item {id: id})
WITH users, collect([i]) AS items
UNWIND $rows AS row
WITH users[row[0]][0] AS u, items[row[1]][0] AS i, row
CREATE (u)-[:INTERACTED {pos: row[2], ts: row[3], rating: row[4], behavior: row[5]}]->(i)
