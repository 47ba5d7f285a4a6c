// mode: read
// params: $id
// The intents of one user, with edge kind, provenance and score.
MATCH (n:User {id: $id})-[r:HAS_INTENT]->(i:Intent)
RETURN i.key AS key, i.name AS name, r.kind AS kind, r.model AS model, r.promptVersion AS promptVersion,
       r.runId AS runId, r.score AS score
ORDER BY r.kind, i.key
