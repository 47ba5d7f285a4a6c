// mode: read
// params: $keys
// Display names of intents (persona descriptions).
MATCH (n:Intent) WHERE n.key IN $keys
RETURN n.key AS key, n.name AS name
