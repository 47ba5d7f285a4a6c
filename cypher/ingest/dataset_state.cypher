// mode: read
// params: $dataset
// What a dataset already has, node kinds and relationship kinds (the writer CREATEs a kind the dataset has none
// of yet, and MERGEs otherwise).
RETURN EXISTS { MATCH (:User {dataset: $dataset}) } AS users,
       EXISTS { MATCH (:Item {dataset: $dataset}) } AS items,
       EXISTS { MATCH (:Session {dataset: $dataset}) } AS sessions,
       EXISTS { MATCH (:User {dataset: $dataset})-[:INTERACTED]->() } AS interactions,
       EXISTS { MATCH (:Session {dataset: $dataset})-[:CONTAINS]->() } AS session_items,
       EXISTS { MATCH (:Item {dataset: $dataset})-[:FACT]-() } AS facts
