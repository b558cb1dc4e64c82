-- Every column of the tables in the databases ? (a list), in table order, with its place in
-- the primary key (NULL when not part of it) and whether the table has a unique index
-- besides the primary key. The change applier reads its tables from this.
-- Every information_schema scan names its databases (parameters 1 and 2 are the same list):
-- a scan of every database opens the sys views, some of which read information_schema
-- themselves, and MariaDB 10.11 can crash (signal 11 in create_tmp_table_for_schema) doing
-- that, most of all once per row in a correlated subquery. Derived tables run once.
SELECT c.TABLE_SCHEMA AS table_schema,
       c.TABLE_NAME AS table_name,
       c.COLUMN_NAME AS column_name,
       c.DATA_TYPE AS data_type,
       c.COLUMN_TYPE AS column_type,
       (coalesce(c.GENERATION_EXPRESSION, '') <> '') AS is_generated,
       pk.SEQ_IN_INDEX AS key_position,
       (u.TABLE_NAME IS NOT NULL) AS other_unique
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
LEFT JOIN (
  SELECT s.TABLE_SCHEMA, s.TABLE_NAME, s.COLUMN_NAME, s.SEQ_IN_INDEX
  FROM information_schema.STATISTICS s
  WHERE s.INDEX_NAME = 'PRIMARY' AND s.TABLE_SCHEMA IN (?)
) pk ON pk.TABLE_SCHEMA = c.TABLE_SCHEMA AND pk.TABLE_NAME = c.TABLE_NAME AND pk.COLUMN_NAME = c.COLUMN_NAME
LEFT JOIN (
  SELECT DISTINCT s.TABLE_SCHEMA, s.TABLE_NAME
  FROM information_schema.STATISTICS s
  WHERE s.NON_UNIQUE = 0 AND s.INDEX_NAME <> 'PRIMARY' AND s.TABLE_SCHEMA IN (?)
) u ON u.TABLE_SCHEMA = c.TABLE_SCHEMA AND u.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA IN (?)
ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION
