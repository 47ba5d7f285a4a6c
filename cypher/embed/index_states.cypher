// mode: read
// params: $names
// State (POPULATING/ONLINE/FAILED) of the named indexes.
SHOW INDEXES YIELD name, state, type, options
WHERE name IN $names
RETURN name, state, type, options
