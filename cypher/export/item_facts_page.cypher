// mode: read
// params: $dataset, $after, $page
// One page of a dataset's items with their FACT edges: [outgoing?, predicate, other end's key, other is an item of this dataset?].
MATCH (i:Item) WHERE i.dataset = $dataset AND i.id > $after
WITH i ORDER BY i.id LIMIT $page
OPTIONAL MATCH (i)-[f:FACT]-(e)
RETURN i.id AS id,
       collect(CASE WHEN f IS NULL THEN NULL
               ELSE [startNode(f) = i, f.predicate, coalesce(e.uri, e.id), e:Item AND e.dataset = $dataset] END) AS facts
ORDER BY id
