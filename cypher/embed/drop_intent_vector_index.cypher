// mode: write
// Drop the Intent vector index (before an encoder switch).
DROP INDEX intent_text_embedding IF EXISTS
