// mode: read
// params: $user
// A user's persona (label, typical entities and items) and the membership weight.
MATCH (u:User {id: $user})-[h:HAS_PERSONA]->(p:Persona)
RETURN p {.id, .index, .run, .size, .label, .labelSource, .topItems, .topEntities, .topIntents} AS persona,
       h.weight AS weight
LIMIT 1
