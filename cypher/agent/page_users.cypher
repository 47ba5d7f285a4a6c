// mode: read
// params: $dataset (null = all), $after (last id of the previous page, '' to start), $page
// One page of users (by id): the properties their text is built from, and each round's status and key.
MATCH (n:User)
WHERE n.id > $after AND ($dataset IS NULL OR n.dataset = $dataset)
RETURN n.id AS id, n {.profile, .text, .age, .gender, .occupation} AS props,
       n.extractStatus AS extractStatus, n.extractKey AS extractKey,
       n.relatedStatus AS relatedStatus, n.relatedKey AS relatedKey,
       n.textHash AS textHash
ORDER BY n.id
LIMIT $page
