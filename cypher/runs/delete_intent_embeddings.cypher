// mode: write
// params: $model, $dataset, $keep_run
// Drop the intent vectors of earlier runs of this model on this dataset (the newest run's stay).
MATCH (r:Run {model: $model, dataset: $dataset})-[e:INTENT_EMBEDDING]->(:Intent)
WHERE r.id <> $keep_run
DELETE e
