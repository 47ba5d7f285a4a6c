// mode: read
// params: $run, $dataset
// The materialised top-k of a run, per user (rank order).
MATCH (u:User {dataset: $dataset})-[r:RECOMMENDED {run: $run}]->(i:Item)
RETURN u.id AS user, i.id AS item, r.rank AS rank, r.score AS score
ORDER BY user, rank
