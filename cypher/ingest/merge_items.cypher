// mode: write
// params: $rows (list of {id, rawId, dataset, title, text, ...})
// Create or update items by id.
UNWIND $rows AS row
MERGE (i:Item {id: row.id})
SET i += row
