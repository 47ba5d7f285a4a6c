// mode: write
// Remove intents no item or user links to any more (left behind when a node's round 1 was redone).
MATCH (i:Intent)
WHERE NOT (i)<-[:SATISFIES|HAS_INTENT]-()
DETACH DELETE i
