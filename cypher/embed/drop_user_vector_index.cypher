// mode: write
// Drop the User vector index (before an encoder switch).
DROP INDEX user_text_embedding IF EXISTS
