// mode: read
// params: $dataset
// The fused knowledge of a dataset's users (status ok): phrases, text and vector.
MATCH (u:User)-[:HAS_KNOWLEDGE]->(k:Knowledge) WHERE u.dataset = $dataset AND k.status = 'ok'
RETURN u.id AS user, k.likes AS likes, k.dislikes AS dislikes, k.contexts AS contexts, k.leanings AS leanings,
       k.text AS text, k.model AS model, k.promptVersion AS promptVersion, k.textEmbedding AS vector
ORDER BY user
