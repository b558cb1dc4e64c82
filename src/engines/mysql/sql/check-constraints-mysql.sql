-- Check constraints (MySQL 8.0.16+: names are unique per database, so the table comes from
-- TABLE_CONSTRAINTS). ENFORCED = 'NO' constraints are kept: the destination gets them too.
-- Parameter: the list of databases.
SELECT t.TABLE_SCHEMA AS `schema`,
       t.TABLE_NAME AS table_name,
       t.CONSTRAINT_NAME AS `name`,
       c.CHECK_CLAUSE AS check_clause
FROM information_schema.TABLE_CONSTRAINTS t
JOIN information_schema.CHECK_CONSTRAINTS c
  ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA
 AND c.CONSTRAINT_NAME = t.CONSTRAINT_NAME
WHERE t.TABLE_SCHEMA IN (?)
  AND t.CONSTRAINT_TYPE = 'CHECK'
ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME, t.CONSTRAINT_NAME;
