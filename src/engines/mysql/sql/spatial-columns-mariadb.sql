-- The SRID attribute (REF_SYSTEM_ID) of the spatial columns of the tables in the given
-- databases. MariaDB's SHOW CREATE TABLE does not print it; 0 means the column has none.
-- Filtered on F_TABLE_SCHEMA: MariaDB then opens only those databases (G_TABLE_SCHEMA
-- would make it scan every database).
-- Parameter: the list of databases.
SELECT g.F_TABLE_SCHEMA AS `schema`,
       g.F_TABLE_NAME AS table_name,
       g.G_GEOMETRY_COLUMN AS `name`,
       g.SRID AS srid
FROM information_schema.GEOMETRY_COLUMNS g
WHERE g.F_TABLE_SCHEMA IN (?);
