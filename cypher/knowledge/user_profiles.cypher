// mode: read
// params: $dataset
// Every user of a dataset with their own properties (demographics / profile text: the profile line of the prompt).
MATCH (u:User) WHERE u.dataset = $dataset
RETURN u.id AS id, properties(u) AS props
ORDER BY id
