// mode: read
// params: none
// Applied schema migrations, oldest first.
MATCH (m:KgpMigration)
RETURN m.version AS version, m.description AS description, m.checksum AS checksum, m.appliedAt AS appliedAt
ORDER BY m.version
