// mode: write
// params: $batch
// Delete up to $batch nodes (and their relationships), keeping migration records. Loop until 0.
MATCH (n) WHERE NOT n:KgpMigration
WITH n LIMIT $batch
DETACH DELETE n
RETURN count(*) AS deleted
