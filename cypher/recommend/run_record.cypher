// mode: read
// params: $run
// One run's JSON record (its checkpoint path, evaluation parameters, metrics).
MATCH (r:Run {id: $run}) RETURN r.id AS id, r.model AS model, r.dataset AS dataset, r.record AS record
