// mode: read
// params: $dataset (null = the whole graph)
// IKGR Table 1 figures: #Intents, #IntEdges (exact/related, item/user) and average intent degree, plus
// how many items/users each round has covered. With a dataset, only its items/users and their intents.
CALL (*) {
  MATCH (n)-[r:SATISFIES|HAS_INTENT]->(i:Intent)
  WHERE $dataset IS NULL OR n.dataset = $dataset
  RETURN count(r) AS intEdges,
         count(CASE WHEN r.kind = 'exact' THEN 1 END) AS exactEdges,
         count(CASE WHEN r.kind = 'related' THEN 1 END) AS relatedEdges,
         count(CASE WHEN type(r) = 'SATISFIES' THEN 1 END) AS itemEdges,
         count(CASE WHEN type(r) = 'HAS_INTENT' THEN 1 END) AS userEdges,
         count(DISTINCT i) AS linkedIntents
}
CALL (*) {
  MATCH (i:Intent)
  RETURN count(i) AS allIntents
}
CALL (*) {
  MATCH (n:Item)
  WHERE $dataset IS NULL OR n.dataset = $dataset
  RETURN count(n) AS items,
         count(CASE WHEN n.extractStatus = 'ok' THEN 1 END) AS itemsExactOk,
         count(CASE WHEN n.extractStatus = 'failed' THEN 1 END) AS itemsExactFailed,
         count(CASE WHEN n.relatedStatus = 'ok' THEN 1 END) AS itemsRelatedOk,
         count(CASE WHEN n.relatedStatus = 'failed' THEN 1 END) AS itemsRelatedFailed
}
CALL (*) {
  MATCH (n:User)
  WHERE $dataset IS NULL OR n.dataset = $dataset
  RETURN count(n) AS users,
         count(CASE WHEN n.extractStatus = 'ok' THEN 1 END) AS usersExactOk,
         count(CASE WHEN n.extractStatus = 'failed' THEN 1 END) AS usersExactFailed,
         count(CASE WHEN n.relatedStatus = 'ok' THEN 1 END) AS usersRelatedOk,
         count(CASE WHEN n.relatedStatus = 'failed' THEN 1 END) AS usersRelatedFailed
}
RETURN intEdges, exactEdges, relatedEdges, itemEdges, userEdges, linkedIntents, allIntents,
       items, itemsExactOk, itemsExactFailed, itemsRelatedOk, itemsRelatedFailed,
       users, usersExactOk, usersExactFailed, usersRelatedOk, usersRelatedFailed
