// mode: write
// params: $rows (list of {uri, label, source, kind})
// Create or update external-KG entities (DBpedia resources and categories, Freebase ids) by URI.
UNWIND $rows AS row
MERGE (e:Entity {uri: row.uri})
SET e.label = row.label, e.source = row.source, e.kind = row.kind
