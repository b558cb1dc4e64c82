-- The SRID attribute of the spatial columns of the tables in the given databases (MySQL 8:
-- COLUMNS.SRS_ID, NULL when the column has none). Untested here: no MySQL 8 server runs in the tests.
-- Parameter: the list of databases.
SELECT c.TABLE_SCHEMA AS `schema`,
       c.TABLE_NAME AS table_name,
       c.COLUMN_NAME AS `name`,
       c.SRS_ID AS srid
FROM information_schema.COLUMNS c
WHERE c.TABLE_SCHEMA IN (?) AND c.SRS_ID IS NOT NULL;
