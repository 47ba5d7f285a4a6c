// mode: read
// params: $user, $item, $limit
// LLM4SBR evidence (`kgp extract --round sessions`): what the LLM inferred the user is after from each view
// (long: the whole history; short: the current session) at the user's latest inferred prefix, and which of the
// catalogue items that answer was localised to tie it to the recommended item: the item itself, or a localised
// item whose text embedding is close to it (plain cosine in [-1, 1]). Generated text grounded in the catalogue,
// graph evidence of the semantic views LLM4SBR fuses, not a decomposition of its score.
MATCH (u:User {id: $user}), (i:Item {id: $item})
MATCH (u)-[:HAS_SESSION*0..1]->(n)-[r0:INFERRED]->(:Item)
WITH u, i, max(r0.prefixEnd) AS latest
MATCH p = (u)-[:HAS_SESSION*0..1]->(n)-[r:INFERRED]->(j:Item)
WHERE r.prefixEnd = latest
WITH p, r, j, i,
     CASE WHEN j = i THEN 1.0
          WHEN j.textEmbedding IS NULL OR i.textEmbedding IS NULL THEN null
          ELSE 2 * vector.similarity.cosine(j.textEmbedding, i.textEmbedding) - 1 END AS similarity
WHERE similarity IS NOT NULL
ORDER BY similarity DESC, r.view, r.rank
LIMIT $limit
RETURN p, r.view AS view, r.prefixEnd AS prefixEnd, r.text AS answer, j.title AS localized, r.rank AS rank,
       r.weight AS weight, similarity, r.model AS model
