// mode: read
// params: $user, $item, $limit
// Intents the user has directly (from their profile) that the recommended item satisfies.
MATCH (u:User {id: $user}), (i:Item {id: $item})
MATCH p = (u)-[h:HAS_INTENT]->(n:Intent)<-[s:SATISFIES]-(i)
RETURN p, n.name AS intent, h.kind AS userKind, s.kind AS itemKind
ORDER BY CASE h.kind WHEN 'exact' THEN 0 ELSE 1 END + CASE s.kind WHEN 'exact' THEN 0 ELSE 1 END
LIMIT $limit
