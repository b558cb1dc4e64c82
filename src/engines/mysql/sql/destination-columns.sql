-- The columns of one destination table, in table order: ? = database, ? = table.
-- data_type is the bare type (tinyint, varbinary, datetime, ...), column_type the full one
-- (tinyint(1), enum('a','b'), int(10) unsigned); generated columns are never written.
SELECT c.COLUMN_NAME AS column_name,
       c.DATA_TYPE AS data_type,
       c.COLUMN_TYPE AS column_type,
       c.COLUMN_KEY AS column_key,
       c.EXTRA AS extra,
       (coalesce(c.GENERATION_EXPRESSION, '') <> '') AS is_generated
FROM information_schema.COLUMNS c
WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ?
ORDER BY c.ORDINAL_POSITION
