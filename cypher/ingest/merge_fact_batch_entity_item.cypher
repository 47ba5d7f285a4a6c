// mode: write
// params: $heads, $tails (distinct keys of the batch), $rows (list of [head position in $heads, predicate, tail position in $tails, source])
// External-KG triples from an Entity to an Item, batch by batch: each endpoint is looked up once per batch; a node that
// is not there makes the batch fail, never a silently skipped or misplaced row.
// Idempotent: one edge per (start, end, pos).
UNWIND $heads AS key
OPTIONAL MATCH (h:Entity {uri: key})
WITH collect([h]) AS heads
UNWIND $tails AS key
OPTIONAL MATCH (t:Item {id: key})
WITH heads, collect([t]) AS tails
UNWIND $rows AS row
WITH heads[row[0]][0] AS h, tails[row[2]][0] AS t, row
MERGE (h)-[f:FACT {predicate: row[1]}]->(t)
SET f.source = row[3]
