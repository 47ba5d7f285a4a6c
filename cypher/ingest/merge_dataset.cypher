// mode: write
// params: $name, $kind, $path, $counts
// Record (or refresh) a dataset's ingest.
MERGE (d:Dataset {name: $name})
SET d.kind = $kind, d.path = $path, d.ingestedAt = datetime(), d += $counts
