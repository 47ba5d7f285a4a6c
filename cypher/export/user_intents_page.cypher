// mode: read
// params: $dataset, $after, $page
// One page of a dataset's users with their own (profile) intents [key, kind].
MATCH (u:User) WHERE u.dataset = $dataset AND u.id > $after
WITH u ORDER BY u.id LIMIT $page
OPTIONAL MATCH (u)-[h:HAS_INTENT]->(n:Intent)
RETURN u.id AS id, collect(CASE WHEN h IS NULL THEN NULL ELSE [n.key, h.kind] END) AS intents
ORDER BY id
