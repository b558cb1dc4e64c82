-- Primary key, unique, check and foreign key constraints of the tables $1 (oid[]).
-- Definitions come from pg_get_constraintdef (run with search_path = pg_catalog so that
-- referenced tables are schema-qualified); columns are in key order.
SELECT c.conrelid AS table_oid,
       c.conname AS name,
       c.contype AS type,
       pg_get_constraintdef(c.oid) AS definition,
       (SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]'::json)
        FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS columns,
       rn.nspname AS referenced_schema,
       rc.relname AS referenced_name
FROM pg_constraint c
LEFT JOIN pg_class rc ON rc.oid = c.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE c.conrelid = ANY ($1::oid[])
  AND c.contype IN ('p', 'u', 'c', 'f')
ORDER BY c.conrelid, c.contype, c.conname;
