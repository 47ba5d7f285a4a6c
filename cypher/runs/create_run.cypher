// mode: write
// params: $run (map: id, model, dataset, started, finished, seed, device, dataChecksum, params, metrics, ...)
// One training run; scalar metrics are flattened into properties, the full record is JSON in `record`.
CREATE (r:Run)
SET r = $run
