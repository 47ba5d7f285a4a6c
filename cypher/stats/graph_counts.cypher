// mode: read
// params: none
// Node counts per label and relationship counts per type, from the count store (instant).
CALL db.stats.retrieve('GRAPH COUNTS') YIELD data
RETURN [n IN data.nodes WHERE n.label IS NOT NULL | {label: n.label, count: n.count}] AS nodes,
       [r IN data.relationships WHERE r.relationshipType IS NOT NULL AND r.startLabel IS NULL AND r.endLabel IS NULL
          | {type: r.relationshipType, count: r.count}] AS relationships
