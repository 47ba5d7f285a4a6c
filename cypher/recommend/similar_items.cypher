// mode: read
// params: $index, $item, $property, $k
// Items nearest to one item in a learned embedding space (vector index).
MATCH (s:Item {id: $item})
CALL db.index.vector.queryNodes($index, $k + 1, s[$property]) YIELD node, score
WHERE node <> s
RETURN node.id AS item, node.title AS title, score
ORDER BY score DESC LIMIT $k
