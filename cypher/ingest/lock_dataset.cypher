// mode: write
// params: $key
// Serialise `kgp ingest` runs of one dataset. Run first in a transaction kept open for the whole ingest (and never
// committed): it MERGEs and deletes a Dataset node under $key ('kgp-lock:ingest:<dataset>'; real dataset names
// hold no ':'), which takes the uniqueness-constraint lock on that name, so the same statement in another
// transaction waits until this one ends. A killed client's transaction is rolled back by the server, releasing it.
MERGE (lock:Dataset {name: $key})
WITH lock
DELETE lock
