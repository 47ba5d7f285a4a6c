// mode: read
// params: $dataset, $scope ('training' | 'tuning')
// What knowledge of one scope a dataset's users already have: the node id, key (model|promptVersion|inputHash)
// and status of each, so a re-run skips users done with the same model, prompt and input. Nodes written before
// scopes existed have no scope property and are training-scope.
MATCH (k:Knowledge) WHERE k.dataset = $dataset AND coalesce(k.scope, 'training') = $scope
RETURN k.id AS id, k.key AS key, k.status AS status
