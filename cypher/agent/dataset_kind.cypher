// mode: read
// params: $dataset
// The loader kind a dataset was ingested with (movielens-100k, amazon-beauty, amazon-games, generic).
MATCH (d:Dataset {name: $dataset}) RETURN d.kind AS kind
