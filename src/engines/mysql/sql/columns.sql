-- Columns of the tables in the given databases, in table order.
-- COLUMN_TYPE is the full type (`int(10) unsigned`, `enum('a','b')`, `decimal(10,2)`);
-- EXTRA says auto_increment, VIRTUAL GENERATED or STORED GENERATED.
-- COLUMN_DEFAULT: MariaDB prints an expression (string literals quoted, 'NULL' for a NULL
-- default); MySQL prints the bare literal, or the expression with EXTRA DEFAULT_GENERATED.
-- Parameter: the list of databases.
SELECT c.TABLE_SCHEMA AS `schema`,
       c.TABLE_NAME AS table_name,
       c.COLUMN_NAME AS `name`,
       c.ORDINAL_POSITION AS position,
       c.COLUMN_TYPE AS column_type,
       c.DATA_TYPE AS data_type,
       c.IS_NULLABLE AS is_nullable,
       c.COLUMN_DEFAULT AS column_default,
       c.EXTRA AS extra,
       c.GENERATION_EXPRESSION AS generation_expression,
       c.CHARACTER_SET_NAME AS charset,
       c.COLLATION_NAME AS collation
FROM information_schema.COLUMNS c
WHERE c.TABLE_SCHEMA IN (?)
ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION;
