// mode: write
// params: $rows (list of {head, predicate, tail, source})
// External-KG triples from a Entity to a Entity; one FACT edge per (head, predicate, tail).
UNWIND $rows AS row
MATCH (h:Entity {uri: row.head})
MATCH (t:Entity {uri: row.tail})
MERGE (h)-[f:FACT {predicate: row.predicate}]->(t)
SET f.source = row.source
