// mode: read
// params: $dataset, $prop, $run
// Every item a run (or a cold start into it) gave a vector: the vector and its intent set (keys).
MATCH (i:Item {dataset: $dataset}) WHERE i[$prop + '_run'] = $run
RETURN i.id AS id, i[$prop] AS vector, coalesce(i[$prop + '_intents'], []) AS intents
ORDER BY id
