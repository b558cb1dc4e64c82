-- Base tables outside the system databases, with what verify and progress need.
-- Views, sequences (MariaDB) and system-versioned tables are left out. TABLE_ROWS and
-- DATA_LENGTH are estimates (InnoDB samples them); AUTO_INCREMENT is the next value.
-- Parameter: none. Callers filter by database and by the job's selection.
SELECT t.TABLE_SCHEMA AS `schema`,
       t.TABLE_NAME AS `name`,
       t.ENGINE AS `engine`,
       t.TABLE_ROWS AS estimated_rows,
       t.DATA_LENGTH AS estimated_bytes,
       t.AUTO_INCREMENT AS auto_increment,
       t.TABLE_COLLATION AS collation,
       (pk.TABLE_NAME IS NOT NULL) AS has_primary_key
FROM information_schema.TABLES t
-- A derived table that skips the system databases, not a correlated subquery per row (see
-- destination-tables.sql: MariaDB 10.11 crashes opening the sys views that read information_schema).
LEFT JOIN (
  SELECT DISTINCT c.TABLE_SCHEMA, c.TABLE_NAME
  FROM information_schema.TABLE_CONSTRAINTS c
  WHERE c.CONSTRAINT_TYPE = 'PRIMARY KEY'
    AND c.TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')
) pk ON pk.TABLE_SCHEMA = t.TABLE_SCHEMA AND pk.TABLE_NAME = t.TABLE_NAME
WHERE t.TABLE_TYPE = 'BASE TABLE'
  AND t.TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')
ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME;
