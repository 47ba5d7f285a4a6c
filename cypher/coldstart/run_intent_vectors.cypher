// mode: read
// params: $run
// Every intent vector a run wrote back.
MATCH (:Run {id: $run})-[v:INTENT_EMBEDDING]->(n:Intent)
RETURN n.key AS key, v.vector AS vector
