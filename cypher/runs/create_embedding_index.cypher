// mode: write
// params: $index, $dimensions
// identifiers: label, property (checked against schema.py by Graph.write_schema)
// Cosine vector index over a learned embedding property.
CREATE VECTOR INDEX $index IF NOT EXISTS
FOR (n:{{label}}) ON (n.{{property}})
OPTIONS {indexConfig: {`vector.dimensions`: $dimensions, `vector.similarity_function`: 'cosine'}}
