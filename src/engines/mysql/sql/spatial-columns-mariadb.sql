-- The SRID attribute (REF_SYSTEM_ID) of the spatial columns of the tables in the given
-- databases. MariaDB's SHOW CREATE TABLE does not print it; 0 means the column has none.
-- Parameter: the list of databases.
SELECT g.G_TABLE_SCHEMA AS `schema`,
       g.G_TABLE_NAME AS table_name,
       g.G_GEOMETRY_COLUMN AS `name`,
       g.SRID AS srid
FROM information_schema.GEOMETRY_COLUMNS g
WHERE g.G_TABLE_SCHEMA IN (?);
