// mode: read
// params: $dataset
// The tuning-scope fused knowledge of a dataset's users (status ok): each user's profile fused from the training
// prefix before their last training item, what their instruction-tuning example may show.
MATCH (u:User)-[:HAS_TUNING_KNOWLEDGE]->(k:Knowledge) WHERE u.dataset = $dataset AND k.status = 'ok'
RETURN u.id AS user, k.text AS text, k.model AS model, k.promptVersion AS promptVersion
ORDER BY user
