// mode: read
// params: $dataset (null = all), $after (last id of the previous page, '' to start), $page
// One page of users (by id) with the properties their text is built from and their current textHash.
MATCH (n:User)
WHERE n.id > $after AND ($dataset IS NULL OR n.dataset = $dataset)
RETURN n.id AS key, n.textHash AS hash, n {.profile, .text, .age, .gender, .occupation} AS props
ORDER BY n.id
LIMIT $page
