// mode: write
// params: $rows (list of {id, props})
// Write learned Item vectors as properties (props: {emb_<model>: [...], emb_<model>_run: run id}).
UNWIND $rows AS row
MATCH (n:Item {id: row.id})
SET n += row.props
