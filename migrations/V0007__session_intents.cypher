// Session intents (kgp extract --round sessions): INFERRED relationships looked up by run and by prefix.
CREATE INDEX inferred_run IF NOT EXISTS FOR ()-[r:INFERRED]-() ON (r.run);
CREATE INDEX inferred_prefix IF NOT EXISTS FOR ()-[r:INFERRED]-() ON (r.view, r.prefixEnd);
