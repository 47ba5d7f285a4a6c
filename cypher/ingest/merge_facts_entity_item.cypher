// mode: write
// params: $rows (list of {head, predicate, tail, source})
// External-KG triples from a Entity to a Item; one FACT edge per (head, predicate, tail).
UNWIND $rows AS row
MATCH (h:Entity {uri: row.head})
MATCH (t:Item {id: row.tail})
MERGE (h)-[f:FACT {predicate: row.predicate}]->(t)
SET f.source = row.source
