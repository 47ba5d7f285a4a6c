// mode: read
// params: $vector, $k, $dataset, $exclude, $r
// Intent localisation (LLM4SBR): the $r items of $dataset nearest to an answer's text vector in the item vector
// index, leaving out $exclude (the items the prompt showed). The index holds every dataset's items, so it is
// asked for $k neighbours (sized by the caller from the dataset's share of the index) before the filter.
CALL db.index.vector.queryNodes('item_text_embedding', $k, $vector)
YIELD node, score
WHERE node.dataset = $dataset AND NOT node.id IN $exclude
RETURN node.id AS id, score
ORDER BY score DESC, id
LIMIT $r
