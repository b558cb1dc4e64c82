-- For each table named by the parallel arrays $1 (schemas, text[]) and $2 (names, text[]):
-- its oid when it exists and its column names in order.
SELECT w.schema,
       w.name,
       c.oid AS oid,
       c.relkind AS kind,
       (SELECT coalesce(json_agg(a.attname ORDER BY a.attnum), '[]'::json)
        FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(schema, name, ord)
LEFT JOIN pg_namespace n ON n.nspname = w.schema
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY w.ord;
