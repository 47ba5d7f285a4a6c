// mode: read
// params: $dataset, $prop
// Every item id of a dataset with the run its $prop vector comes from (cold start tells the new ones apart).
MATCH (i:Item {dataset: $dataset}) RETURN i.id AS id, i[$prop + '_run'] AS run ORDER BY id
