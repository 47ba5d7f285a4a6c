// mode: read
// params: $dataset (null = all), $after (last id of the previous page, '' to start), $page
// One page of items (by id) with the properties their text is built from and their current textHash.
MATCH (n:Item)
WHERE n.id > $after AND ($dataset IS NULL OR n.dataset = $dataset)
RETURN n.id AS key, n.textHash AS hash, n {.title, .text, .year, .genres, .abstract, .description} AS props
ORDER BY n.id
LIMIT $page
