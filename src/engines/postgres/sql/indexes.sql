-- Secondary indexes of the tables $1 (oid[]): valid indexes that do not back a primary key
-- or unique constraint, with their complete CREATE INDEX statement.
SELECT i.indrelid AS table_oid,
       ic.relname AS name,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = ANY ($1::oid[])
  AND i.indisvalid
  AND i.indislive
  AND NOT EXISTS (
    SELECT 1 FROM pg_constraint c
    WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u')
  )
ORDER BY i.indrelid, ic.relname;
