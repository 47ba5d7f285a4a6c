// mode: write
// params: $rows (list of {id, props})
// New users' inductive vectors and intent sets, tagged with the run they join.
UNWIND $rows AS row
MATCH (n:User {id: row.id})
SET n += row.props
