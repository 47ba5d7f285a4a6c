// mode: read
// params: $dataset
// How many of the dataset's items satisfy each intent exactly (round 1).
MATCH (i:Item {dataset: $dataset})-[:SATISFIES {kind: 'exact'}]->(n:Intent)
RETURN n.name AS name, count(DISTINCT i) AS items
