// mode: read
// params: $user, $item, $limit
// External-KG paths: an item the user took shares an entity (director, actor, DBpedia category, ...) with
// the recommended item. Specific entities (few items) first: a shared director explains more than a language.
MATCH (u:User {id: $user}), (i:Item {id: $item})
MATCH p = (u)-[:INTERACTED]->(liked:Item)-[f1:FACT]-(e)-[f2:FACT]-(i)
WHERE liked <> i AND e <> u
WITH p, e, f1, f2, liked, COUNT { (e)-[:FACT]-() } AS degree
RETURN p, coalesce(e.label, e.title) AS entity, f1.predicate AS viaPredicate, f2.predicate AS itemPredicate,
       liked.title AS via, degree
ORDER BY degree ASC, CASE WHEN f1.predicate = f2.predicate THEN 0 ELSE 1 END
LIMIT $limit
