// mode: write
// params: $rows (list of {id, rawId, dataset, ...profile})
// Create or update users by id.
UNWIND $rows AS row
MERGE (u:User {id: row.id})
SET u += row
