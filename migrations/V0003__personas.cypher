// Personas (HDGI): lookups by dataset and by run, and the membership edges by run. Idempotent.
CREATE INDEX persona_dataset IF NOT EXISTS FOR (p:Persona) ON (p.dataset);
CREATE INDEX persona_run IF NOT EXISTS FOR (p:Persona) ON (p.run);
CREATE INDEX has_persona_run IF NOT EXISTS FOR ()-[r:HAS_PERSONA]-() ON (r.run);
