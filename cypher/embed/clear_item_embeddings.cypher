// mode: write
// params: $batch
// Remove up to $batch stored item text vectors (encoder switch); run until nothing is set.
MATCH (n:Item)
WHERE n.textEmbedding IS NOT NULL OR n.textHash IS NOT NULL
WITH n LIMIT $batch
SET n.textEmbedding = null, n.textHash = null
