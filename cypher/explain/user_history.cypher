// mode: read
// params: $user, $limit
// A user's interactions in sequence order.
MATCH (u:User {id: $user})-[r:INTERACTED]->(i:Item)
RETURN i.id AS item, i.title AS title, r.pos AS pos, r.ts AS ts, r.rating AS rating
ORDER BY r.pos
LIMIT $limit
