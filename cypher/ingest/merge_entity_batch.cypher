// mode: write
// params: $rows (list of [uri, label, source, kind])
// Create or update external-KG entities by URI (shared by datasets, so always MERGE); rows are plain lists.
UNWIND $rows AS row
MERGE (e:Entity {uri: row[0]})
SET e.label = row[1], e.source = row[2], e.kind = row[3]
