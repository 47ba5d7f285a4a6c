// mode: write
// params: $sessions, $items (distinct ids of the batch), $rows (list of [session position in $sessions, item position in $items, pos, ts])
// Ordered session membership (CONTAINS), batch by batch: each endpoint is looked up once per batch; a node that
// is not there makes the batch fail, never a silently skipped or misplaced row.
// Idempotent: one edge per (start, end, pos).
UNWIND $sessions AS id
OPTIONAL MATCH (s:Session {id: id})
WITH collect([s]) AS sessions
UNWIND $items AS id
OPTIONAL MATCH (i:Item {id: id})
WITH sessions, collect([i]) AS items
UNWIND $rows AS row
WITH sessions[row[0]][0] AS s, items[row[1]][0] AS i, row
MERGE (s)-[c:CONTAINS {pos: row[2]}]->(i)
SET c.ts = row[3]
