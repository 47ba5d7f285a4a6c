// mode: write
// params: $model, $dataset, $keep_run
// Remove RECOMMENDED edges of earlier runs of the same model on the same dataset (latest run wins).
MATCH (r:Run {model: $model, dataset: $dataset}) WHERE r.id <> $keep_run
MATCH (u:User {dataset: $dataset})-[e:RECOMMENDED {run: r.id}]->()
DELETE e
