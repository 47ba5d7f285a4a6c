// mode: read
// params: $user, $item, $limit
// Content evidence: the items the user took whose text embedding (`kgp embed`) is closest to the recommended
// item's, as paths (u)-[:INTERACTED]->(liked), with the plain cosine in [-1, 1] (Neo4j's function returns
// (1 + cos) / 2). Present for every item with a text vector, so every recommendation of an embedded dataset
// has at least this explanation.
MATCH (u:User {id: $user}), (i:Item {id: $item})
WHERE i.textEmbedding IS NOT NULL
MATCH p = (u)-[:INTERACTED]->(liked:Item)
WHERE liked <> i AND liked.textEmbedding IS NOT NULL
WITH p, liked, 2 * vector.similarity.cosine(liked.textEmbedding, i.textEmbedding) - 1 AS similarity
ORDER BY similarity DESC, liked.id
LIMIT $limit
RETURN p, liked.title AS via, similarity
