-- Names already taken in the schemas $1 (text[]): every relation (tables, indexes,
-- sequences, views) by schema, and every table constraint by table.
SELECT 'relation' AS kind, n.nspname AS schema, NULL::name AS table_name, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1::text[])
UNION ALL
SELECT 'constraint', n.nspname, t.relname, k.conname
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = ANY ($1::text[]);
