// mode: read
// params: none
// Constraints present in the database.
SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties
RETURN name, labelsOrTypes, properties
