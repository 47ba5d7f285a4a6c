// mode: write
// params: $rows (list of {key, hash, embedding})
// Store user text vectors (float32) and the hash of the text they were made from.
UNWIND $rows AS row
MATCH (n:User {id: row.key})
CALL db.create.setNodeVectorProperty(n, 'textEmbedding', row.embedding)
SET n.textHash = row.hash
