// mode: read
// params: $dataset, $prop, $run
// The users a run wrote vectors for: the vector and the intent set (keys) its score reads.
MATCH (u:User {dataset: $dataset}) WHERE u[$prop + '_run'] = $run
RETURN u.id AS id, u[$prop] AS vector, coalesce(u[$prop + '_intents'], []) AS intents
