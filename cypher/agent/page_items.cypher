// mode: read
// params: $dataset (null = all), $after (last id of the previous page, '' to start), $page
// One page of items (by id): the properties their text is built from, and each round's status and key.
MATCH (n:Item)
WHERE n.id > $after AND ($dataset IS NULL OR n.dataset = $dataset)
RETURN n.id AS id, n {.title, .text, .year, .genres, .abstract, .description} AS props,
       n.extractStatus AS extractStatus, n.extractKey AS extractKey,
       n.relatedStatus AS relatedStatus, n.relatedKey AS relatedKey,
       n.textHash AS textHash
ORDER BY n.id
LIMIT $page
