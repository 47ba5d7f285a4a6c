// mode: read
// params: $dataset, $prop
// Every user id of a dataset with the run its $prop vector comes from (cold start tells the new ones apart).
MATCH (u:User {dataset: $dataset}) RETURN u.id AS id, u[$prop + '_run'] AS run ORDER BY id
