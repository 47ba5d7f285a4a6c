// mode: read
// params: $dataset, $after, $page
// One page of a dataset's items with their intents [key, kind].
MATCH (i:Item) WHERE i.dataset = $dataset AND i.id > $after
WITH i ORDER BY i.id LIMIT $page
OPTIONAL MATCH (i)-[s:SATISFIES]->(n:Intent)
RETURN i.id AS id, collect(CASE WHEN s IS NULL THEN NULL ELSE [n.key, s.kind] END) AS intents
ORDER BY id
