// mode: read
// params: $user, $item, $limit
// External-KG paths: an item the user took shares an entity (director, actor, DBpedia category, ...) with
// the recommended item. Specific entities (few items) first: a shared director explains more than a language.
// Evaluated from the recommended item's side: its entities in ascending degree, each joined to the user's
// items only when reached, so the planner's partial top stops after the first $limit paths of the most
// specific entities instead of expanding every entity (a language: thousands of items) of the item.
MATCH (u:User {id: $user}), (i:Item {id: $item})
MATCH (i)-[f2:FACT]-(e)
WHERE e <> u
WITH u, i, e, f2, COUNT { (e)-[:FACT]-() } AS degree
ORDER BY degree ASC
MATCH p = (u)-[:INTERACTED]->(liked:Item)-[f1:FACT]-(e)-[f2]-(i)
WHERE liked <> i
RETURN p, coalesce(e.label, e.title) AS entity, f1.predicate AS viaPredicate, f2.predicate AS itemPredicate,
       liked.title AS via, degree
ORDER BY degree ASC, CASE WHEN f1.predicate = f2.predicate THEN 0 ELSE 1 END
LIMIT $limit
