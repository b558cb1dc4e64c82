-- The columns of one table as they are now, in order: what the binlog change reader reports
-- after DDL. COLUMN_KEY is 'PRI' for primary key columns; EXTRA says VIRTUAL GENERATED or
-- STORED GENERATED (MariaDB: also VIRTUAL / PERSISTENT) for generated columns.
-- Parameters: the database, the table.
SELECT COLUMN_NAME AS `name`,
       COLUMN_TYPE AS `type`,
       COLUMN_KEY AS `key`,
       EXTRA AS extra
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION;
