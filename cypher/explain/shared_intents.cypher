// mode: read
// params: $user, $item, $limit
// Intents the recommended item shares with items the user took (exact before related), as paths.
MATCH (u:User {id: $user}), (i:Item {id: $item})
MATCH p = (u)-[:INTERACTED]->(liked:Item)-[s1:SATISFIES]->(n:Intent)<-[s2:SATISFIES]-(i)
WHERE liked <> i
RETURN p, n.name AS intent, s1.kind AS viaKind, s2.kind AS itemKind, liked.title AS via
ORDER BY CASE s1.kind WHEN 'exact' THEN 0 ELSE 1 END + CASE s2.kind WHEN 'exact' THEN 0 ELSE 1 END,
         COUNT { (n)<-[:SATISFIES]-() } ASC
LIMIT $limit
