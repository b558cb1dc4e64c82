-- Index columns of the tables in the given databases (PRIMARY, unique and secondary), in
-- index column order. SUB_PART is a prefix length; COLLATION 'D' a descending column;
-- EXPRESSION (MySQL 8 functional key parts) is read with SELECT * so that this file runs on
-- MariaDB too, which has no such column.
-- Parameter: the list of databases.
SELECT *
FROM information_schema.STATISTICS s
WHERE s.TABLE_SCHEMA IN (?)
ORDER BY s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME, s.SEQ_IN_INDEX;
