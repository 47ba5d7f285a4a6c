// mode: read
// params: $dataset, $after, $page
// One page of a dataset's items with their exact (round 1) intent names and their reference labels for the
// agreement measure: genres, and the labels of category facts (DBpedia `subject`, any fact of kind category);
// the genres alone too (the fused-knowledge measure prefers them where a dataset has them).
MATCH (i:Item) WHERE i.dataset = $dataset AND i.id > $after
WITH i ORDER BY i.id LIMIT $page
OPTIONAL MATCH (i)-[:SATISFIES {kind: 'exact'}]->(n:Intent)
WITH i, collect(n.name) AS intents
OPTIONAL MATCH (i)-[f:FACT]->(e:Entity) WHERE f.predicate = 'subject' OR f.kind = 'category'
WITH i, intents, collect(e.label) AS categories
RETURN i.id AS id, i.title AS title, intents, coalesce(i.genres, []) + categories AS reference,
       coalesce(i.genres, []) AS genres
ORDER BY id
