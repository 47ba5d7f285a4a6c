// Serving (`kgp recommend`, `kgp explain`): the newest run of a dataset is looked up on every call
// (cypher/recommend/serve_top_k, latest_run), by an index seek on the run's dataset instead of a scan of
// every Run node (training, extraction and persona runs accumulate). Idempotent.
CREATE INDEX run_dataset IF NOT EXISTS FOR (r:Run) ON (r.dataset);
