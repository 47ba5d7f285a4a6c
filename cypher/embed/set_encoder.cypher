// mode: write
// params: $id, $name, $dimensions, $path
// Record the encoder now in use.
MERGE (e:KgpEncoder {id: $id})
SET e.name = $name, e.dimensions = $dimensions, e.path = $path, e.updatedAt = datetime()
