// mode: read
// params: $after (last key of the previous page, '' to start), $page
// One page of intents (by key; intents are shared across datasets) with their name and current textHash.
MATCH (n:Intent)
WHERE n.key > $after
RETURN n.key AS key, n.textHash AS hash, n {.name, .key} AS props
ORDER BY n.key
LIMIT $page
