// Fused user knowledge (kgp extract --round knowledge): one Knowledge node per user, looked up by id and dataset.
CREATE CONSTRAINT knowledge_id IF NOT EXISTS FOR (k:Knowledge) REQUIRE k.id IS UNIQUE;
CREATE INDEX knowledge_dataset IF NOT EXISTS FOR (k:Knowledge) ON (k.dataset);
