// mode: write
// params: $rows (list of {id, status, error, key, intents: [{key, score}]}), $model, $promptVersion, $runId
// Round 2 result of users: replace the node's related edges with links to the chosen (existing) intents,
// each with its retrieval score and provenance, and record the round-2 status/key.
UNWIND $rows AS row
MATCH (n:User {id: row.id})
OPTIONAL MATCH (n)-[old:HAS_INTENT {kind: 'related'}]->(:Intent)
DELETE old
WITH DISTINCT n, row
SET n.relatedStatus = row.status, n.relatedError = row.error, n.relatedKey = row.key,
    n.relatedRunId = $runId, n.relatedAt = datetime()
WITH n, row
UNWIND row.intents AS it
MATCH (i:Intent {key: it.key})
MERGE (n)-[r:HAS_INTENT {kind: 'related'}]->(i)
SET r.model = $model, r.promptVersion = $promptVersion, r.runId = $runId, r.score = it.score
