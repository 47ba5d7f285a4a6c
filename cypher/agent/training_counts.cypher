// mode: read
// params: $dataset (null = all), $label ('Item' or 'User')
// How much training behaviour each node has, to spend a limited LLM budget on the nodes that matter first
// (`kgp extract --order popular`). Leave-one-out holds out each user's last two interactions by position
// (validation, test): they are never counted, so the order never reflects a held-out interaction.
MATCH (u:User)-[r:INTERACTED]->(i:Item)
WHERE $dataset IS NULL OR i.dataset = $dataset
WITH u, i, r ORDER BY coalesce(r.pos, r.ts)
WITH u, collect(i.id) AS items
WITH u, items[..size(items) - 2] AS train
UNWIND train AS item
WITH CASE $label WHEN 'User' THEN u.id ELSE item END AS id
RETURN id, count(*) AS n
