// mode: read
// params: $item
// Does this item exist, and in which dataset.
MATCH (i:Item {id: $item}) RETURN i.id AS id, i.dataset AS dataset, i.title AS title
