// mode: read
// params: $id, $k
// Round 2 retrieval (RAG): the $k intents nearest to the user's text vector in the intent vector index, from
// the pool of the user's own dataset (intents some node of that dataset has as exact intents), excluding the
// intents the user already has as exact intents. Empty when the user has no vector. The index is asked for
// 3k + |own| neighbours so that, after other datasets' intents are filtered out, k usually remain.
MATCH (n:User {id: $id})
WHERE n.textEmbedding IS NOT NULL
OPTIONAL MATCH (n)-[:HAS_INTENT {kind: 'exact'}]->(own:Intent)
WITH n, collect(own) AS owned
CALL db.index.vector.queryNodes('intent_text_embedding', 3 * $k + size(owned), n.textEmbedding)
YIELD node, score
WHERE NOT node IN owned
  AND EXISTS { MATCH (node)<-[:SATISFIES|HAS_INTENT {kind: 'exact'}]-(m) WHERE m.dataset = n.dataset }
RETURN node.key AS key, node.name AS name, score
ORDER BY score DESC, key
LIMIT $k
