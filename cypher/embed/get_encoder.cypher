// mode: read
// params: $id
// The encoder the stored text vectors were made with (one KgpEncoder node per embedding space).
MATCH (e:KgpEncoder {id: $id})
RETURN e.name AS name, e.dimensions AS dimensions, e.path AS path, e.updatedAt AS updatedAt
