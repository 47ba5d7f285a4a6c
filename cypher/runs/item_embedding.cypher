// mode: read
// params: $item, $property
// One item's learned vector under an embedding property (emb_<model>).
MATCH (i:Item {id: $item})
RETURN i[$property] AS vector, i[$property + '_run'] AS run
