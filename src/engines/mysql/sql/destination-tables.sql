-- Every column of the tables in the databases ? (a list), in table order, with its place in
-- the primary key (NULL when not part of it) and whether the table has a unique index
-- besides the primary key. The change applier reads its tables from this.
SELECT c.TABLE_SCHEMA AS table_schema,
       c.TABLE_NAME AS table_name,
       c.COLUMN_NAME AS column_name,
       c.DATA_TYPE AS data_type,
       c.COLUMN_TYPE AS column_type,
       (coalesce(c.GENERATION_EXPRESSION, '') <> '') AS is_generated,
       (SELECT s.SEQ_IN_INDEX
          FROM information_schema.STATISTICS s
         WHERE s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME
           AND s.INDEX_NAME = 'PRIMARY' AND s.COLUMN_NAME = c.COLUMN_NAME) AS key_position,
       EXISTS (SELECT 1
                 FROM information_schema.STATISTICS u
                WHERE u.TABLE_SCHEMA = c.TABLE_SCHEMA AND u.TABLE_NAME = c.TABLE_NAME
                  AND u.NON_UNIQUE = 0 AND u.INDEX_NAME <> 'PRIMARY') AS other_unique
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
WHERE c.TABLE_SCHEMA IN (?)
ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION
