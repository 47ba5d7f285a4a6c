// mode: read
// params: $id, $k
// Round 2 retrieval (RAG): the $k intents nearest to the item's text vector in the intent vector index,
// excluding the intents the item already has as exact intents. Empty when the item has no vector.
MATCH (n:Item {id: $id})
WHERE n.textEmbedding IS NOT NULL
OPTIONAL MATCH (n)-[:SATISFIES {kind: 'exact'}]->(own:Intent)
WITH n, collect(own) AS owned
CALL db.index.vector.queryNodes('intent_text_embedding', $k + size(owned), n.textEmbedding)
YIELD node, score
WHERE NOT node IN owned
RETURN node.key AS key, node.name AS name, score
ORDER BY score DESC, key
LIMIT $k
