// mode: write
// params: $rows (list of {user, persona, weight}), $run
// Each user's persona of one run: (:User)-[:HAS_PERSONA {weight, run}]->(:Persona).
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MATCH (p:Persona {id: row.persona})
CREATE (u)-[:HAS_PERSONA {weight: row.weight, run: $run}]->(p)
