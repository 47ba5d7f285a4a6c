// mode: write
// params: $rows (list of {head, predicate, tail, source})
// Fast path for a dataset whose items have no FACT edges yet (the writer checks first).
UNWIND $rows AS row
MATCH (h:Item {id: row.head})
MATCH (t:Item {id: row.tail})
CREATE (h)-[:FACT {predicate: row.predicate, source: row.source}]->(t)
