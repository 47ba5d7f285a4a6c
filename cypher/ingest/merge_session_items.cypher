// mode: write
// params: $rows (list of {session, item, pos, ts})
// Ordered session membership.
UNWIND $rows AS row
MATCH (s:Session {id: row.session})
MATCH (i:Item {id: row.item})
MERGE (s)-[c:CONTAINS {pos: row.pos}]->(i)
SET c.ts = row.ts
