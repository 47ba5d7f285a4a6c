// mode: read
// params: $dataset, $run, $index
// One persona of a run by its index (an anonymous session's inferred persona).
MATCH (p:Persona {dataset: $dataset, run: $run, index: $index})
RETURN p {.id, .index, .run, .size, .label, .labelSource, .topItems, .topEntities, .topIntents} AS persona
