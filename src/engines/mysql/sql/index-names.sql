-- The index names (PRIMARY included) and foreign key names of the tables in the databases
-- ? (a list): what createPostDataObjects skips because it exists.
SELECT DISTINCT 'index' AS kind, s.TABLE_SCHEMA AS table_schema, s.TABLE_NAME AS table_name, s.INDEX_NAME AS name
FROM information_schema.STATISTICS s
WHERE s.TABLE_SCHEMA IN (?)
UNION ALL
SELECT 'constraint', k.CONSTRAINT_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME
FROM information_schema.TABLE_CONSTRAINTS k
WHERE k.CONSTRAINT_SCHEMA IN (?) AND k.CONSTRAINT_TYPE IN ('FOREIGN KEY', 'CHECK')
