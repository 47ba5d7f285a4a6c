// mode: write
// params: $rows (list of {session, item, pos, ts})
// Fast path for a dataset with no CONTAINS edges yet (the writer checks first).
UNWIND $rows AS row
MATCH (s:Session {id: row.session})
MATCH (i:Item {id: row.item})
CREATE (s)-[:CONTAINS {pos: row.pos, ts: row.ts}]->(i)
