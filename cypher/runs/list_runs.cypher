// mode: read
// params: $dataset, $model, $kinds, $limit
// Runs, newest first: training runs carry no kind (or 'train'), intent-extraction runs kind 'extract'.
// Dataset/model filters optional: pass null.
MATCH (r:Run)
WHERE ($dataset IS NULL OR r.dataset = $dataset) AND ($model IS NULL OR r.model = $model)
  AND coalesce(r.kind, 'train') IN $kinds
RETURN r {.*} AS run
ORDER BY coalesce(r.finished, toString(r.finishedAt)) DESC
LIMIT $limit
