// mode: write
// params: $rows (list of {key, vector}), $run
// The run's learned intent vectors (IKGR's propagated e_a), one relationship per intent: Intent nodes are
// shared across datasets, so the vector belongs to the run, not to the node.
MATCH (r:Run {id: $run})
UNWIND $rows AS row
MATCH (n:Intent {key: row.key})
CREATE (r)-[:INTENT_EMBEDDING {vector: row.vector}]->(n)
