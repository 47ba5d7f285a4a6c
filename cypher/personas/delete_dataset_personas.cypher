// mode: write
// params: $dataset
// Remove a dataset's Persona nodes and their HAS_PERSONA edges (a new persona run replaces the old one).
MATCH (p:Persona {dataset: $dataset})
DETACH DELETE p
