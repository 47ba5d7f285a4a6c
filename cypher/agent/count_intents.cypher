// mode: read
// Size of the intent pool (round 2 needs one).
MATCH (i:Intent)
RETURN count(i) AS intents, count(i.textEmbedding) AS embedded
