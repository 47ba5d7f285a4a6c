// mode: read
// params: $user, $item, $limit
// Users who share items with this user and took the recommended item (most overlap first), as paths.
// overlap(v) = the number of paths (u)-[:INTERACTED]->(x)<-[:INTERACTED]-(v) (the shared items, each counted
// once per pair of edges), ranked among the users v <> u who took the item. It is counted from the cheaper
// side, chosen by the degrees alone:
// - from the user: one expansion over the user's items' users, a hash aggregation per neighbour, kept when
//   the neighbour is among the item's takers (collected once); work = sum of the user's items' degrees;
// - from the item: the item's takers' items hash-joined with the user's items; work = sum of the takers'
//   degrees. A taker with several edges to the item repeats its rows once per edge: divided out.
// Both give the same overlaps; the path shown per neighbour is any one of its shared items.
MATCH (u:User {id: $user}), (i:Item {id: $item})
WITH u, i,
     reduce(n = 0, d IN COLLECT { MATCH (u)-[:INTERACTED]->(x) RETURN COUNT { (x)<-[:INTERACTED]-() } } | n + d) AS viaUser,
     reduce(n = 0, d IN COLLECT { MATCH (i)<-[:INTERACTED]-(t) RETURN COUNT { (t)-[:INTERACTED]->() } } | n + d) AS viaItem
CALL (u, i, viaUser, viaItem) {
  WITH u, i WHERE viaUser <= viaItem
  WITH u, i, COLLECT { MATCH (i)<-[:INTERACTED]-(t) WHERE t <> u RETURN DISTINCT t } AS takers
  MATCH (u)-[:INTERACTED]->()<-[:INTERACTED]-(v)
  WITH takers, v, count(*) AS overlap
  WHERE v IN takers
  RETURN v, overlap
  UNION ALL
  WITH u, i WHERE viaUser > viaItem
  MATCH (i)<-[r0:INTERACTED]-(v)
  MATCH (v)-[:INTERACTED]->(x)<-[:INTERACTED]-(u)
  USING JOIN ON x
  WHERE v <> u
  WITH v, count(*) AS paths, count(DISTINCT r0) AS itemEdges
  RETURN v, paths / itemEdges AS overlap
}
WITH u, i, v, overlap ORDER BY overlap DESC, v.id LIMIT $limit
CALL (u, v, i) {
  MATCH p = (u)-[:INTERACTED]->(:Item)<-[:INTERACTED]-(v)-[:INTERACTED]->(i)
  RETURN p LIMIT 1
}
RETURN p, v.id AS similarUser, overlap
ORDER BY overlap DESC, similarUser
