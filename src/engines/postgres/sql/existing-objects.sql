-- Which of the schemas $1 (text[]) exist, which extensions are installed, and the types
-- and sequences in those schemas, for deciding what still has to be created.
SELECT 'schema' AS kind, n.nspname AS schema, n.nspname AS name, NULL::json AS labels
FROM pg_namespace n WHERE n.nspname = ANY ($1::text[])
UNION ALL
SELECT 'extension', NULL, x.extname, NULL FROM pg_extension x
UNION ALL
SELECT CASE t.typtype WHEN 'e' THEN 'type' ELSE 'domain' END, n.nspname, t.typname,
       (SELECT coalesce(json_agg(e.enumlabel ORDER BY e.enumsortorder), '[]'::json) FROM pg_enum e WHERE e.enumtypid = t.oid)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = ANY ($1::text[]) AND t.typtype IN ('e', 'd')
UNION ALL
SELECT 'sequence', n.nspname, c.relname, NULL
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND c.relkind = 'S';
