// mode: read
// params: $dataset, $run (null = every run)
// Every stored session intent of a dataset: per (user, view, prefixEnd) its localised items with similarity,
// rank and weight, the answer text and provenance.
MATCH (u:User) WHERE u.dataset = $dataset
MATCH (u)-[:HAS_SESSION*0..1]->(n)-[r:INFERRED]->(i:Item)
WHERE $run IS NULL OR r.run = $run
RETURN u.id AS user, r.view AS view, r.prefixEnd AS prefixEnd, r.phase AS phase, r.text AS text,
       r.grounding AS grounding, i.id AS item,
       i.title AS title, r.score AS score, r.rank AS rank, r.weight AS weight, r.model AS model,
       r.promptVersion AS promptVersion, r.run AS run
ORDER BY user, prefixEnd, view, rank
