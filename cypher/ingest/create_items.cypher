// mode: write
// params: $rows (list of {id, rawId, dataset, title, text, ...})
// Fast path for a dataset with no Item nodes yet (the writer checks first): CREATE instead of MERGE.
UNWIND $rows AS row
CREATE (i:Item)
SET i += row
