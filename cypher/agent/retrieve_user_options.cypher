// mode: read
// params: $id, $k
// Round 2 retrieval (RAG): the $k intents nearest to the user's text vector in the intent vector index,
// excluding the intents the user already has as exact intents. Empty when the user has no vector.
MATCH (n:User {id: $id})
WHERE n.textEmbedding IS NOT NULL
OPTIONAL MATCH (n)-[:HAS_INTENT {kind: 'exact'}]->(own:Intent)
WITH n, collect(own) AS owned
CALL db.index.vector.queryNodes('intent_text_embedding', $k + size(owned), n.textEmbedding)
YIELD node, score
WHERE NOT node IN owned
RETURN node.key AS key, node.name AS name, score
ORDER BY score DESC, key
LIMIT $k
