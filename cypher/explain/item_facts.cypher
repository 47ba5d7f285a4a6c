// mode: read
// params: $item, $limit
// An item's external-KG facts (both directions), with the entity's label and source.
MATCH (i:Item {id: $item})
OPTIONAL MATCH (i)-[f:FACT]-(e)
WITH i, f, e LIMIT $limit
RETURN i.id AS item, i.title AS title,
       collect(CASE WHEN f IS NULL THEN NULL ELSE {predicate: f.predicate, source: f.source,
               label: coalesce(e.label, e.title), uri: coalesce(e.uri, e.id),
               direction: CASE WHEN startNode(f) = i THEN 'out' ELSE 'in' END} END) AS facts
