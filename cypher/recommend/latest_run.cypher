// mode: read
// params: $dataset, $model
// The newest run of a model on a dataset that materialised recommendations (model null = any model).
MATCH (r:Run {dataset: $dataset}) WHERE ($model IS NULL OR r.model = $model) AND r.recommendations > 0
RETURN r.id AS id, r.model AS model, r.finished AS finished
ORDER BY r.finished DESC LIMIT 1
