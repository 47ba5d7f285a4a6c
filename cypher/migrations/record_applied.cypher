// mode: write
// params: $version, $description, $checksum, $file
// Record one applied migration.
MERGE (m:KgpMigration {version: $version})
ON CREATE SET m.appliedAt = datetime()
SET m.description = $description, m.checksum = $checksum, m.file = $file
