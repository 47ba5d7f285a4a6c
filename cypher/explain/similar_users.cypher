// mode: read
// params: $user, $item, $limit
// Users who share items with this user and took the recommended item (most overlap first), as paths.
// Overlaps are counted in one expansion from the user's items (a hash aggregation keyed by the neighbour
// alone: no label checks, INTERACTED only runs User -> Item), and only then filtered to the neighbours who took
// the item: cheaper than one overlap count per taker of a popular item.
MATCH (u:User {id: $user})-[:INTERACTED]->()<-[:INTERACTED]-(v)
WHERE v <> u
WITH v, count(*) AS overlap
MATCH (i:Item {id: $item})
WHERE EXISTS { (v)-[:INTERACTED]->(i) }
WITH v, overlap ORDER BY overlap DESC, v.id LIMIT $limit
MATCH (u:User {id: $user}), (i:Item {id: $item})
CALL (u, v, i) {
  MATCH p = (u)-[:INTERACTED]->(:Item)<-[:INTERACTED]-(v)-[:INTERACTED]->(i)
  RETURN p LIMIT 1
}
RETURN p, v.id AS similarUser, overlap
ORDER BY overlap DESC, similarUser
