// Initial schema: one uniqueness constraint per node key, plus the lookup indexes ingest and the
// explanation queries need. Every statement is idempotent.
CREATE CONSTRAINT kgp_migration_version IF NOT EXISTS FOR (m:KgpMigration) REQUIRE m.version IS UNIQUE;
CREATE CONSTRAINT user_id IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE;
CREATE CONSTRAINT item_id IF NOT EXISTS FOR (i:Item) REQUIRE i.id IS UNIQUE;
CREATE CONSTRAINT entity_uri IF NOT EXISTS FOR (e:Entity) REQUIRE e.uri IS UNIQUE;
CREATE CONSTRAINT intent_key IF NOT EXISTS FOR (n:Intent) REQUIRE n.key IS UNIQUE;
CREATE CONSTRAINT session_id IF NOT EXISTS FOR (s:Session) REQUIRE s.id IS UNIQUE;
CREATE CONSTRAINT persona_id IF NOT EXISTS FOR (p:Persona) REQUIRE p.id IS UNIQUE;
CREATE CONSTRAINT run_id IF NOT EXISTS FOR (r:Run) REQUIRE r.id IS UNIQUE;
CREATE CONSTRAINT dataset_name IF NOT EXISTS FOR (d:Dataset) REQUIRE d.name IS UNIQUE;
CREATE INDEX user_dataset IF NOT EXISTS FOR (u:User) ON (u.dataset);
CREATE INDEX item_dataset IF NOT EXISTS FOR (i:Item) ON (i.dataset);
CREATE INDEX item_freebase IF NOT EXISTS FOR (i:Item) ON (i.freebaseId);
CREATE INDEX item_dbpedia IF NOT EXISTS FOR (i:Item) ON (i.dbpediaUri);
CREATE INDEX session_dataset IF NOT EXISTS FOR (s:Session) ON (s.dataset);
CREATE INDEX entity_source IF NOT EXISTS FOR (e:Entity) ON (e.source);
CREATE INDEX fact_predicate IF NOT EXISTS FOR ()-[f:FACT]-() ON (f.predicate);
CREATE INDEX interacted_pos IF NOT EXISTS FOR ()-[r:INTERACTED]-() ON (r.pos);
CREATE INDEX satisfies_kind IF NOT EXISTS FOR ()-[r:SATISFIES]-() ON (r.kind);
CREATE INDEX has_intent_kind IF NOT EXISTS FOR ()-[r:HAS_INTENT]-() ON (r.kind);
CREATE INDEX recommended_run IF NOT EXISTS FOR ()-[r:RECOMMENDED]-() ON (r.run);
