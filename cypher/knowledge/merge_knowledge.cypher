// mode: write
// params: $row ({user, id, scope, dataset, key, status, error, likes, dislikes, contexts, leanings, likesText, text,
//   model, promptVersion, inputHash, vector}), $run
// One user's training-scope fused knowledge, written with its status in one transaction: a (:Knowledge) node per
// user (id = the user's id), linked from the user; a failed user keeps no phrases. The text vector is set when given.
MATCH (u:User {id: $row.user})
MERGE (k:Knowledge {id: $row.id})
SET k.scope = $row.scope, k.dataset = $row.dataset, k.key = $row.key, k.status = $row.status, k.error = $row.error,
    k.likes = $row.likes, k.dislikes = $row.dislikes, k.contexts = $row.contexts, k.leanings = $row.leanings,
    k.likesText = $row.likesText, k.text = $row.text, k.model = $row.model, k.promptVersion = $row.promptVersion,
    k.inputHash = $row.inputHash, k.run = $run, k.updatedAt = datetime()
REMOVE k.textEmbedding
MERGE (u)-[:HAS_KNOWLEDGE]->(k)
WITH k WHERE $row.vector IS NOT NULL
CALL db.create.setNodeVectorProperty(k, 'textEmbedding', $row.vector)
