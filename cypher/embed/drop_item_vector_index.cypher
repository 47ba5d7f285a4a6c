// mode: write
// Drop the Item vector index (before an encoder switch).
DROP INDEX item_text_embedding IF EXISTS
