// mode: read
// params: $ids, $dataset
// What the inductive Eq. 3 reads for new items: the text vector, the FACT edges [outgoing?, predicate, other
// end's key] and the intents [key, kind, text vector] (exact first), and the users who already took the item.
MATCH (i:Item) WHERE i.id IN $ids AND i.dataset = $dataset
OPTIONAL MATCH (i)-[f:FACT]-(e)
WITH i, collect(CASE WHEN f IS NULL THEN NULL ELSE [startNode(f) = i, f.predicate, coalesce(e.uri, e.id)] END) AS facts
OPTIONAL MATCH (i)-[s:SATISFIES]->(n:Intent)
WITH i, facts, s, n ORDER BY CASE s.kind WHEN 'exact' THEN 0 ELSE 1 END, n.key
WITH i, facts, collect(CASE WHEN n IS NULL THEN NULL ELSE {key: n.key, kind: s.kind, vector: n.textEmbedding} END) AS intents
RETURN i.id AS id, i.textEmbedding AS text, facts, intents,
       [(u:User)-[:INTERACTED]->(i) | u.id] AS takenBy
ORDER BY id
