// mode: read
// params: $user
// Does this user exist, and in which dataset.
MATCH (u:User {id: $user}) RETURN u.id AS id, u.dataset AS dataset
