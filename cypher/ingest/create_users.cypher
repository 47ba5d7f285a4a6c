// mode: write
// params: $rows (list of {id, rawId, dataset, ...profile})
// Fast path for a dataset with no User nodes yet (the writer checks first): CREATE instead of MERGE.
UNWIND $rows AS row
CREATE (u:User)
SET u += row
