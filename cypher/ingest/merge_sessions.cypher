// mode: write
// params: $rows (list of {id, user, dataset, start, end, size})
// Sessions and their owner.
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MERGE (s:Session {id: row.id})
SET s.dataset = row.dataset, s.start = row.start, s.end = row.end, s.size = row.size
MERGE (u)-[:HAS_SESSION]->(s)
