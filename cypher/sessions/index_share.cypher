// mode: read
// params: $dataset
// How many items carry a text vector in all (what the item vector index holds) and in $dataset.
MATCH (i:Item) WHERE i.textEmbedding IS NOT NULL
RETURN count(i) AS total, count(CASE WHEN i.dataset = $dataset THEN 1 END) AS mine
