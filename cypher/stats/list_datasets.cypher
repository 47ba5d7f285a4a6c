// mode: read
// params: none
// Datasets ingested so far.
MATCH (d:Dataset)
RETURN d.name AS name, d.kind AS kind, d.path AS path, toString(d.ingestedAt) AS ingestedAt,
       d.users AS users, d.items AS items, d.interactions AS interactions
ORDER BY name
