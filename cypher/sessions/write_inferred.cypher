// mode: write
// params: $row ({user, anchor, view, prefixEnd, phase, key, text, grounding, model, promptVersion, items: [{id, score,
//   rank, weight}]}), $run
// One localised guess, in one transaction: the earlier result of the same (anchor, view, prefixEnd) is removed,
// then one (:Session|:User)-[:INFERRED]->(:Item) per localised item. The anchor is the Session $row.anchor when
// it exists (short view: the target's session), else the user (long view, or data without sessions).
MATCH (u:User {id: $row.user})
OPTIONAL MATCH (u)-[:HAS_SESSION]->(s:Session {id: $row.anchor})
WITH u, coalesce(s, u) AS n
OPTIONAL MATCH (u)-[:HAS_SESSION*0..1]->()-[old:INFERRED]->(:Item)
  WHERE old.view = $row.view AND old.prefixEnd = $row.prefixEnd
DELETE old
WITH DISTINCT n
UNWIND $row.items AS it
MATCH (i:Item {id: it.id})
CREATE (n)-[:INFERRED {view: $row.view, prefixEnd: $row.prefixEnd, phase: $row.phase, text: $row.text,
                       grounding: $row.grounding,
                       score: it.score, rank: it.rank, weight: it.weight, model: $row.model,
                       promptVersion: $row.promptVersion, key: $row.key, run: $run, createdAt: datetime()}]->(i)
