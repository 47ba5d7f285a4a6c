// mode: write
// params: $dataset
// First statement of a write-back: take the Dataset node's write lock for the rest of the transaction (the SET
// and REMOVE of a scratch property change nothing). A concurrent write-back on the same dataset waits here, so it
// sees this one's run and recommendations committed before it deletes "earlier runs' recommendations": the
// newest run wins even when two write-backs overlap.
MATCH (d:Dataset {name: $dataset})
SET d.kgpWriteBackLock = true
REMOVE d.kgpWriteBackLock
