// mode: write
// params: $rows (list of {id, status, error, key, intents: [{key, name}]}), $model, $promptVersion, $runId
// Round 1 result of users, one transaction per batch: replace the node's intent edges (a redo also voids
// its round-2 links), merge intents case-insensitively by key, link them as exact with provenance, and
// record the status/key that lets a re-run skip the node.
UNWIND $rows AS row
MATCH (n:User {id: row.id})
OPTIONAL MATCH (n)-[old:HAS_INTENT]->(:Intent)
DELETE old
WITH DISTINCT n, row
SET n.extractStatus = row.status, n.extractError = row.error, n.extractKey = row.key,
    n.extractRunId = $runId, n.extractAt = datetime()
REMOVE n.relatedStatus, n.relatedError, n.relatedKey, n.relatedRunId, n.relatedAt
WITH n, row
UNWIND row.intents AS it
MERGE (i:Intent {key: it.key})
  ON CREATE SET i.name = it.name
MERGE (n)-[r:HAS_INTENT {kind: 'exact'}]->(i)
SET r.model = $model, r.promptVersion = $promptVersion, r.runId = $runId
