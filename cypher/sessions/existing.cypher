// mode: read
// params: $dataset
// The session intents a dataset already has: one row per (user, view, prefixEnd) with its key
// (model|promptVersion|inputHash), so a re-run skips prefixes done with the same model, prompt and input.
MATCH (u:User) WHERE u.dataset = $dataset
MATCH (u)-[:HAS_SESSION*0..1]->(n)-[r:INFERRED]->(:Item)
RETURN DISTINCT u.id AS user, r.view AS view, r.prefixEnd AS prefixEnd, r.key AS key
