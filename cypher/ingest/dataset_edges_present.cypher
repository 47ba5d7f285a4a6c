// mode: read
// params: $dataset
// Which relationship kinds a dataset already has (decides MERGE vs the CREATE fast path).
RETURN EXISTS { MATCH (:User {dataset: $dataset})-[:INTERACTED]->() } AS interactions,
       EXISTS { MATCH (:Session {dataset: $dataset})-[:CONTAINS]->() } AS session_items,
       EXISTS { MATCH (:Item {dataset: $dataset})-[:FACT]-() } AS facts
