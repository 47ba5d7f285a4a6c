// mode: read
// params: $dataset, $after, $page
// One page of a dataset's items in id order, as two lists: ids and the nodes' internal ids (the export's join
// key for this read only: never stored, never shown).
MATCH (i:Item) WHERE i.dataset = $dataset AND i.id > $after
WITH i ORDER BY i.id LIMIT $page
RETURN collect(i.id) AS ids, collect(id(i)) AS nodes
