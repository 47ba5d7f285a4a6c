// mode: read
// How many intent edges exist at all (count store, constant time): the exporter skips the intent expansions of
// the column queries when there are none.
RETURN COUNT { ()-[:SATISFIES]->() } AS satisfies, COUNT { ()-[:HAS_INTENT]->() } AS hasIntent
