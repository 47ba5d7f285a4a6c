// mode: write
// params: $rows (list of {id, props})
// Cold items' inductive vectors and intent sets, tagged with the run they join.
UNWIND $rows AS row
MATCH (n:Item {id: row.id})
SET n += row.props
