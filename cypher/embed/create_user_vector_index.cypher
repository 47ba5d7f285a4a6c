// mode: write
// params: $dimensions (the recorded encoder's dimension)
// Cosine vector index over User.textEmbedding; created from code because its dimension follows the encoder.
CREATE VECTOR INDEX user_text_embedding IF NOT EXISTS
FOR (n:User) ON (n.textEmbedding)
OPTIONS {indexConfig: {`vector.dimensions`: $dimensions, `vector.similarity_function`: 'cosine'}}
