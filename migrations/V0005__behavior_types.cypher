// Behaviour types on INTERACTED (view, buy, loved, ...): filtered and grouped by behaviour. Idempotent.
CREATE INDEX interacted_behavior IF NOT EXISTS FOR ()-[r:INTERACTED]-() ON (r.behavior);
