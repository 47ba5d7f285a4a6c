// mode: write
// params: $rows (list of {user, items: [{item, rank, score}]}), $run, $model
// Materialise top-k recommendations of one run.
UNWIND $rows AS row
MATCH (u:User {id: row.user})
UNWIND row.items AS rec
MATCH (i:Item {id: rec.item})
CREATE (u)-[:RECOMMENDED {rank: rec.rank, score: rec.score, run: $run, model: $model}]->(i)
