// mode: write
// params: $users, $items (distinct ids of the batch), $rows (list of [user position in $users, item position in $items, pos, ts, rating, behavior])
// INTERACTED edges, batch by batch: each endpoint is looked up once per batch, rows are plain lists; a node that
// is not there makes the batch fail (a relationship to null), never a silently skipped or misplaced row.
// Idempotent: one edge per (start, end, pos).
UNWIND $users AS id
OPTIONAL MATCH (u:User {id: id})
WITH collect([u]) AS users
UNWIND $items AS id
OPTIONAL MATCH (i:Item {id: id})
WITH users, collect([i]) AS items
UNWIND $rows AS row
WITH users[row[0]][0] AS u, items[row[1]][0] AS i, row
MERGE (u)-[r:INTERACTED {pos: row[2]}]->(i)
SET r.ts = row[3], r.rating = row[4], r.behavior = row[5]
