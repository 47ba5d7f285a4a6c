// mode: read
// params: $dataset, $after, $page
// One page of a dataset's items (by id) with title and text vector.
MATCH (i:Item) WHERE i.dataset = $dataset AND i.id > $after
RETURN i.id AS id, i.title AS title, i.textEmbedding AS emb, i.freebaseId AS freebaseId
ORDER BY i.id LIMIT $page
