// mode: write
// params: $rows (list of {id, props})
// Write learned User vectors as properties (props: {emb_<model>: [...], emb_<model>_run: run id}).
UNWIND $rows AS row
MATCH (n:User {id: row.id})
SET n += row.props
