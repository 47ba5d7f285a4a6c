// mode: write
// params: $rows (list of {user, items: [{item, rank, score}]}), $run, $model
// A user's new top-k of a run, replacing the old one (cold items merged in by score).
UNWIND $rows AS row
MATCH (u:User {id: row.user})
OPTIONAL MATCH (u)-[old:RECOMMENDED {run: $run}]->()
DELETE old
WITH DISTINCT u, row
UNWIND row.items AS rec
MATCH (i:Item {id: rec.item})
CREATE (u)-[:RECOMMENDED {rank: rec.rank, score: rec.score, run: $run, model: $model}]->(i)
