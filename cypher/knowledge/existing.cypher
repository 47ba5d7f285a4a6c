// mode: read
// params: $dataset
// What knowledge a dataset's users already have: the key (model|promptVersion|inputHash) and status of each,
// so a re-run skips users done with the same model, prompt and input.
MATCH (k:Knowledge) WHERE k.dataset = $dataset
RETURN k.id AS id, k.key AS key, k.status AS status
