// mode: read
// params: $dataset, $after, $page
// One page of a dataset's user ids in id order, as one list (the exporter's key pass).
MATCH (u:User) WHERE u.dataset = $dataset AND u.id > $after
WITH u ORDER BY u.id LIMIT $page
RETURN collect(u.id) AS ids, collect(id(u)) AS nodes
