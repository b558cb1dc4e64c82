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
       EXISTS (
         SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c
         WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY'
       ) AS has_primary_key
FROM information_schema.TABLES t
WHERE t.TABLE_TYPE = 'BASE TABLE'
  AND t.TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')
ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME;
