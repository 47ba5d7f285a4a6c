// mode: read
// params: $dataset, $first, $last, $missing, $vectors, $sessions, $intents
// The users with $first <= id <= $last (a key range of the key pass), column by column: one row of lists
// aligned by user, in id order. Per user: the text vector ([] when absent or not asked for); the INTERACTED
// edges as four aligned lists, the target's internal id, pos, ts ($missing for none) and behaviour type ('' for
// none), in storage order
// (the exporter sorts them by pos); the sessions [id, size] in start order; the profile intents [key, kind].
// Internal ids are this read's join keys only (never stored, never shown).
MATCH (u:User) WHERE u.dataset = $dataset AND u.id >= $first AND u.id <= $last
WITH u ORDER BY u.id
CALL (u) {
  MATCH (u)-[r:INTERACTED]->(i)
  RETURN collect(id(i)) AS items, collect(coalesce(r.pos, $missing)) AS pos, collect(coalesce(r.ts, $missing)) AS ts,
         collect(coalesce(r.behavior, '')) AS behaviors
}
CALL (u) {
  MATCH (u)-[:HAS_SESSION]->(s:Session) WHERE $sessions
  WITH s ORDER BY s.start, s.id
  RETURN collect(coalesce(s.id, '')) AS sessionIds, collect(coalesce(s.size, -1)) AS sessionSizes
}
CALL (u) {
  MATCH (u)-[h:HAS_INTENT]->(n:Intent) WHERE $intents AND n.key IS NOT NULL
  RETURN collect(n.key) AS intentKeys, collect(coalesce(h.kind, '')) AS intentKinds
}
RETURN collect(u.id) AS ids,
       collect(CASE WHEN $vectors THEN coalesce(u.textEmbedding, []) ELSE [] END) AS vectors,
       collect(items) AS items, collect(pos) AS pos, collect(ts) AS ts, collect(behaviors) AS behaviors,
       collect(sessionIds) AS sessionIds, collect(sessionSizes) AS sessionSizes,
       collect(intentKeys) AS intentKeys, collect(intentKinds) AS intentKinds
