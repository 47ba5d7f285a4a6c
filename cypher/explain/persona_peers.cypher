// mode: read
// params: $user, $item, $limit
// Persona path: (u)-[:HAS_PERSONA]->(persona)<-[:HAS_PERSONA]-(peer)-[:INTERACTED]->(item): peers of the user's
// persona who took the item (up to $limit paths), how many did, and the persona's label and typical entities.
MATCH p = (u:User {id: $user})-[:HAS_PERSONA]->(pe:Persona)<-[:HAS_PERSONA]-(peer:User)-[:INTERACTED]->(i:Item {id: $item})
WHERE peer <> u
WITH pe, collect(p) AS paths, count(DISTINCT peer) AS peers
UNWIND paths[..$limit] AS p
RETURN p, pe.label AS persona, peers, pe.size AS personaSize, pe.topEntities[..3] AS typical
