// mode: read
// params: $dataset, $after, $page
// One page of a dataset's users (by id) with their interactions ([item, ts, behaviour]) in sequence order and text
// vector.
MATCH (u:User) WHERE u.dataset = $dataset AND u.id > $after
WITH u ORDER BY u.id LIMIT $page
OPTIONAL MATCH (u)-[r:INTERACTED]->(i:Item)
WITH u, r, i ORDER BY u.id, r.pos
RETURN u.id AS id, u.textEmbedding AS emb,
       collect(CASE WHEN r IS NULL THEN NULL ELSE [i.id, r.ts, r.behavior] END) AS interactions
ORDER BY id
