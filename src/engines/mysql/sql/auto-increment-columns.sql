-- The AUTO_INCREMENT column of each table in the databases ? (a list).
SELECT c.TABLE_SCHEMA AS table_schema, c.TABLE_NAME AS table_name, c.COLUMN_NAME AS column_name
FROM information_schema.COLUMNS c
WHERE c.TABLE_SCHEMA IN (?) AND c.EXTRA LIKE '%auto_increment%'
