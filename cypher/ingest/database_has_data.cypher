// mode: read
// Whether the database holds anything besides the migration records (a bulk first load needs an empty one).
RETURN EXISTS { MATCH (n) WHERE NOT n:KgpMigration } AS hasData
