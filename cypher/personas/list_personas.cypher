// mode: read
// params: $dataset
// A dataset's current personas, largest first.
MATCH (p:Persona {dataset: $dataset})
RETURN p {.id, .index, .run, .size, .label, .labelSource, .topItems, .topEntities, .topIntents} AS persona
ORDER BY p.size DESC, p.index
