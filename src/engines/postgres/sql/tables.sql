-- Ordinary and partitioned tables outside the system schemas, with what verify and
-- progress need. Temporary tables and tables that belong to an extension are left out.
-- Partitions (relispartition) are returned so that callers can say they are skipped.
-- Sizes are in table-sizes.sql: pg_table_size locks the table, so only selected ones.
SELECT c.oid AS oid,
       n.nspname AS schema,
       c.relname AS name,
       c.relkind AS kind,
       c.relispartition AS is_partition,
       c.relpersistence = 'u' AS unlogged,
       c.reltuples::bigint AS estimated_rows,
       CASE c.relreplident
         WHEN 'd' THEN 'default'
         WHEN 'f' THEN 'full'
         WHEN 'i' THEN 'index'
         WHEN 'n' THEN 'nothing'
       END AS replica_identity,
       EXISTS (SELECT 1 FROM pg_constraint p WHERE p.conrelid = c.oid AND p.contype = 'p') AS has_primary_key,
       has_schema_privilege(n.oid, 'USAGE') AS schema_usage,
       has_table_privilege(c.oid, 'SELECT') AS table_select
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  )
ORDER BY n.nspname, c.relname;
