-- Views and materialized views of the given schemas, with each table, view or foreign table
-- they read: a view carried by the schema script needs what it reads on the destination.
-- $1: the schema names.
SELECT DISTINCT vn.nspname AS view_schema, v.relname AS view_name,
       tn.nspname AS table_schema, t.relname AS table_name, t.relkind AS table_kind
FROM pg_rewrite r
JOIN pg_class v ON v.oid = r.ev_class
JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE v.relkind IN ('v', 'm')
  AND vn.nspname = ANY($1)
  AND t.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY 1, 2, 3, 4;
