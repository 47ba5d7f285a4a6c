// mode: read
// params: $user, $run, $k
// A user's materialised top-k of one run, never an item the user interacted with.
MATCH (u:User {id: $user})-[r:RECOMMENDED {run: $run}]->(i:Item)
WHERE NOT EXISTS { (u)-[:INTERACTED]->(i) }
RETURN i.id AS item, i.title AS title, r.rank AS rank, r.score AS score
ORDER BY r.rank
LIMIT $k
