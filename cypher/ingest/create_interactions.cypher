// mode: write
// params: $rows (list of {user, item, pos, ts, rating, behavior})
// Fast path for a dataset with no INTERACTED edges yet (the writer checks first): CREATE instead of MERGE.
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MATCH (i:Item {id: row.item})
CREATE (u)-[:INTERACTED {pos: row.pos, ts: row.ts, rating: row.rating, behavior: row.behavior}]->(i)
