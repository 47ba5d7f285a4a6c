// mode: read
// params: $user, $item, $run, $prop
// What a run needs to recompute its score of (user, item) term by term: the run's score kind and λ, the
// user's and item's written-back vectors (property $prop, e.g. emb_ikgr) and the run that wrote them, their
// intent sets (keys, in the model's order) with the run's intent vectors, and the materialised
// recommendation if the pair has one.
MATCH (r:Run {id: $run}), (u:User {id: $user}), (i:Item {id: $item})
WITH r, u, i, coalesce(u[$prop + '_intents'], []) AS uk, coalesce(i[$prop + '_intents'], []) AS ik
OPTIONAL MATCH (r)-[v:INTENT_EMBEDDING]->(n:Intent) WHERE n.key IN uk OR n.key IN ik
WITH r, u, i, uk, ik, collect({key: n.key, name: n.name, vector: v.vector}) AS intents
OPTIONAL MATCH (u)-[rec:RECOMMENDED {run: $run}]->(i)
RETURN r.model AS model, r.scoreKind AS kind, r.scoreLambda AS lam,
       u[$prop] AS userVector, u[$prop + '_run'] AS userRun, i[$prop] AS itemVector, i[$prop + '_run'] AS itemRun,
       uk AS userIntents, ik AS itemIntents, [x IN intents WHERE x.key IS NOT NULL] AS intents,
       rec.score AS recommendedScore, rec.rank AS recommendedRank
