// mode: read
// params: $ids, $dataset, $prop
// What the inductive Eq. 3 reads for new users: the profile text vector, the items taken (in order) with the
// intent sets the run gave them ($prop + '_intents'), and the profile intents [key, kind].
MATCH (u:User) WHERE u.id IN $ids AND u.dataset = $dataset
OPTIONAL MATCH (u)-[r:INTERACTED]->(i:Item)
WITH u, r, i ORDER BY r.pos
WITH u, collect(CASE WHEN i IS NULL THEN NULL ELSE {id: i.id, intents: coalesce(i[$prop + '_intents'], [])} END) AS items
OPTIONAL MATCH (u)-[h:HAS_INTENT]->(n:Intent)
WITH u, items, h, n ORDER BY CASE h.kind WHEN 'exact' THEN 0 ELSE 1 END, n.key
RETURN u.id AS id, u.textEmbedding AS text, items,
       collect(CASE WHEN n IS NULL THEN NULL ELSE {key: n.key, kind: h.kind} END) AS intents
ORDER BY id
