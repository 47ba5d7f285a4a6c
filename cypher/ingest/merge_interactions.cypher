// mode: write
// params: $rows (list of {user, item, pos, ts, rating, behavior})
// One INTERACTED edge per (user, position in the user's time-ordered sequence).
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MATCH (i:Item {id: row.item})
MERGE (u)-[r:INTERACTED {pos: row.pos}]->(i)
SET r.ts = row.ts, r.rating = row.rating, r.behavior = row.behavior
