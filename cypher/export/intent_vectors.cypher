// mode: read
// params: $keys
// Text vectors of the given intents.
MATCH (n:Intent) WHERE n.key IN $keys
RETURN n.key AS key, n.textEmbedding AS emb
