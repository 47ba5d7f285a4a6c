// mode: write
// params: $versions
// Remove migration records (tests only: lets a scratch migration folder reuse version numbers).
MATCH (m:KgpMigration) WHERE m.version IN $versions
DELETE m
