// mode: read
// params: $dataset, $first, $last, $vectors, $kg, $intents
// The items with $first <= id <= $last (a key range of the key pass), column by column: one row of lists
// aligned by item, in id order. Per item: its internal id, the text vector ([] when absent or not asked for),
// its FACT edges in storage order as aligned lists [outgoing?, predicate, other end's internal id], its intents
// [key, kind]. Then, once per distinct other end that is not an item of this dataset: its internal id and its
// key (uri, else id), read in the same transaction. Internal ids are this read's join keys only.
MATCH (i:Item) WHERE i.dataset = $dataset AND i.id >= $first AND i.id <= $last
WITH i ORDER BY i.id
CALL (i) {
  MATCH (i)-[f:FACT]-(e) WHERE $kg
  RETURN collect(startNode(f) = i) AS factOut, collect(coalesce(f.predicate, '')) AS factPredicates,
         collect(id(e)) AS factOther
}
CALL (i) {
  MATCH (i)-[s:SATISFIES]->(n:Intent) WHERE $intents AND n.key IS NOT NULL
  RETURN collect(n.key) AS intentKeys, collect(coalesce(s.kind, '')) AS intentKinds
}
WITH collect(i.id) AS ids, collect(id(i)) AS nodes,
     collect(CASE WHEN $vectors THEN coalesce(i.textEmbedding, []) ELSE [] END) AS vectors,
     collect(factOut) AS factOut, collect(factPredicates) AS factPredicates, collect(factOther) AS factOther,
     collect(intentKeys) AS intentKeys, collect(intentKinds) AS intentKinds
CALL (factOther) {
  UNWIND factOther AS others
  UNWIND others AS other
  WITH DISTINCT other
  MATCH (e) WHERE id(e) = other AND NOT (e:Item AND coalesce(e.dataset = $dataset, false))
  RETURN collect(other) AS entityNodes, collect(coalesce(e.uri, e.id, '')) AS entityKeys
}
RETURN ids, nodes, vectors, factOut, factPredicates, factOther, intentKeys, intentKinds, entityNodes, entityKeys
