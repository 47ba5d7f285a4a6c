// mode: write
// params: $id, $props (extraction summary: round, model, promptVersion, dataset, counts, timings)
// One Run node per extraction run, for provenance (edges carry its id as runId).
MERGE (r:Run {id: $id})
SET r += $props, r.kind = 'extract', r.finishedAt = datetime()
