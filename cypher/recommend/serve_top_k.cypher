// mode: read
// params: $candidates, $dataset, $model, $k
// `kgp recommend` in one round trip: the first id in $candidates that is a user (of $dataset unless null), the
// newest run of $model (any model if null) on the user's dataset that materialised recommendations, and the
// user's top-$k of that run in rank order, never an item the user interacted with. No row: no such user;
// run null: no such run (items then empty). Every step is an index seek (user id, run dataset) or an
// expansion from the user.
UNWIND range(0, size($candidates) - 1) AS n
MATCH (u:User {id: $candidates[n]})
WHERE $dataset IS NULL OR u.dataset = $dataset
WITH u ORDER BY n LIMIT 1
CALL (u) {
  OPTIONAL MATCH (r:Run {dataset: u.dataset})
  WHERE ($model IS NULL OR r.model = $model) AND r.recommendations > 0
  RETURN r ORDER BY r.finished DESC LIMIT 1
}
CALL (u, r) {
  OPTIONAL MATCH (u)-[rec:RECOMMENDED {run: r.id}]->(i:Item)
  WHERE NOT EXISTS { (u)-[:INTERACTED]->(i) }
  WITH i, rec ORDER BY rec.rank LIMIT $k
  RETURN collect({item: i.id, title: i.title, rank: rec.rank, score: rec.score}) AS items
}
RETURN u.id AS user, u.dataset AS dataset, r.id AS run, r.model AS model, items
