-- The tables, views and their columns in the databases ? (a list), in column order; a
-- relation without columns still appears once (column_name NULL).
SELECT t.TABLE_SCHEMA AS table_schema,
       t.TABLE_NAME AS table_name,
       t.TABLE_TYPE AS table_type,
       c.COLUMN_NAME AS column_name
FROM information_schema.TABLES t
LEFT JOIN information_schema.COLUMNS c
  ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
WHERE t.TABLE_SCHEMA IN (?)
ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME, c.ORDINAL_POSITION
