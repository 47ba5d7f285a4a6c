// mode: read
// params: $dataset, $after, $page
// One page of a dataset's users (by id) with their sessions' sizes in session order (ids "<user>#<n>").
MATCH (u:User) WHERE u.dataset = $dataset AND u.id > $after
WITH u ORDER BY u.id LIMIT $page
OPTIONAL MATCH (u)-[:HAS_SESSION]->(s:Session)
WITH u, s ORDER BY u.id, s.start, s.id
RETURN u.id AS id,
       collect(CASE WHEN s IS NULL THEN NULL ELSE [s.id, s.size] END) AS sessions
ORDER BY id
