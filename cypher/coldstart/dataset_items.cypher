// mode: read
// params: $dataset
// Every item id of a dataset (cold start tells the new ones from those a run trained on).
MATCH (i:Item {dataset: $dataset}) RETURN i.id AS id ORDER BY id
