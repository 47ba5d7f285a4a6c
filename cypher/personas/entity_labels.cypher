// mode: read
// params: $uris
// Human-readable labels of KG entities (persona descriptions).
MATCH (e:Entity) WHERE e.uri IN $uris
RETURN e.uri AS uri, e.label AS label
