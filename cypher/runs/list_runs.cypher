// mode: read
// params: $dataset, $model, $limit
// Training runs, newest first (dataset/model filters optional: pass null).
MATCH (r:Run)
WHERE ($dataset IS NULL OR r.dataset = $dataset) AND ($model IS NULL OR r.model = $model)
RETURN r {.*} AS run
ORDER BY r.finished DESC
LIMIT $limit
