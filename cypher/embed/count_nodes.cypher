// mode: read
// params: $dataset (null = all datasets)
// Node counts for the embedding progress bar (intents are shared across datasets).
CALL () { MATCH (i:Item) WHERE $dataset IS NULL OR i.dataset = $dataset RETURN count(i) AS items }
CALL () { MATCH (u:User) WHERE $dataset IS NULL OR u.dataset = $dataset RETURN count(u) AS users }
CALL () { MATCH (n:Intent) RETURN count(n) AS intents }
RETURN items, users, intents
