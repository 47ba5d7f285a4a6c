// mode: read
// params: $user, $item, $limit
// Users who share items with this user and took the recommended item (most overlap first), as paths.
// Overlaps are counted in one expansion from the user's items (a hash aggregation per neighbour), and only
// then filtered to the neighbours who took the item: cheaper than one overlap count per taker of a popular item.
MATCH (u:User {id: $user}), (i:Item {id: $item})
MATCH (u)-[:INTERACTED]->(:Item)<-[:INTERACTED]-(v:User)
WHERE v <> u
WITH u, i, v, count(*) AS overlap
WHERE EXISTS { (v)-[:INTERACTED]->(i) }
ORDER BY overlap DESC, v.id LIMIT $limit
CALL (u, v, i) {
  MATCH p = (u)-[:INTERACTED]->(:Item)<-[:INTERACTED]-(v)-[:INTERACTED]->(i)
  RETURN p LIMIT 1
}
RETURN p, v.id AS similarUser, overlap
ORDER BY overlap DESC, similarUser
