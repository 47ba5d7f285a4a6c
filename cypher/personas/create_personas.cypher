// mode: write
// params: $rows (list of persona property maps: id, index, size, centroid, label, ...), $dataset, $run
// One persona run's Persona nodes.
UNWIND $rows AS row
CREATE (p:Persona)
SET p = row, p.dataset = $dataset, p.run = $run
