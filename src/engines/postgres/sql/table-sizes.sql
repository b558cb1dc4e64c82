-- On-disk size (heap, TOAST, free space and visibility maps; no indexes) of the tables
-- $1 (oid[]).
SELECT c.oid AS oid, pg_table_size(c.oid) AS bytes
FROM pg_class c
WHERE c.oid = ANY ($1::oid[]);
