// mode: write
// params: $dataset, $batch
// Delete up to $batch nodes of one dataset (users, items, sessions and the dataset record). Loop until 0.
MATCH (n) WHERE n.dataset = $dataset OR (n:Dataset AND n.name = $dataset)
WITH n LIMIT $batch
DETACH DELETE n
RETURN count(*) AS deleted
