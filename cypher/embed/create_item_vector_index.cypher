// mode: write
// params: $dimensions (the recorded encoder's dimension)
// Cosine vector index over Item.textEmbedding; created from code because its dimension follows the encoder.
CREATE VECTOR INDEX item_text_embedding IF NOT EXISTS
FOR (n:Item) ON (n.textEmbedding)
OPTIONS {indexConfig: {`vector.dimensions`: $dimensions, `vector.similarity_function`: 'cosine'}}
