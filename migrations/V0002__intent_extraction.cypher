// Intent extraction and text embeddings. The vector indexes are NOT created here: their dimension follows
// the configured encoder, so kgplatform.embed creates them from code (cypher/embed/create_*_vector_index)
// and drops/recreates them when the encoder changes. Every statement is idempotent.
CREATE CONSTRAINT kgp_encoder_id IF NOT EXISTS FOR (e:KgpEncoder) REQUIRE e.id IS UNIQUE;
CREATE INDEX item_extract_status IF NOT EXISTS FOR (i:Item) ON (i.extractStatus);
CREATE INDEX user_extract_status IF NOT EXISTS FOR (u:User) ON (u.extractStatus);
