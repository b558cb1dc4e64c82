-- Check constraints (MariaDB: CHECK_CONSTRAINTS names the table; names are unique per
-- table only). Column-level checks include the json_valid() that a JSON column carries.
-- Parameter: the list of databases.
SELECT c.CONSTRAINT_SCHEMA AS `schema`,
       c.TABLE_NAME AS table_name,
       c.CONSTRAINT_NAME AS `name`,
       c.CHECK_CLAUSE AS check_clause
FROM information_schema.CHECK_CONSTRAINTS c
WHERE c.CONSTRAINT_SCHEMA IN (?)
ORDER BY c.CONSTRAINT_SCHEMA, c.TABLE_NAME, c.CONSTRAINT_NAME;
