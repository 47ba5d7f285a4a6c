// mode: read
// params: $user, $item, $limit
// Users who share items with this user and took the recommended item (most overlap first), as paths.
MATCH (u:User {id: $user}), (i:Item {id: $item})
MATCH (v:User)-[:INTERACTED]->(i) WHERE v <> u
WITH u, i, v, COUNT { (u)-[:INTERACTED]->(:Item)<-[:INTERACTED]-(v) } AS overlap
WHERE overlap > 0
ORDER BY overlap DESC LIMIT $limit
CALL (u, v, i) {
  MATCH p = (u)-[:INTERACTED]->(:Item)<-[:INTERACTED]-(v)-[:INTERACTED]->(i)
  RETURN p LIMIT 1
}
RETURN p, v.id AS similarUser, overlap
ORDER BY overlap DESC
