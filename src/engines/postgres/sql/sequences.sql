-- Every sequence outside the system schemas with its options, the column that owns it
-- (serial: deptype 'a'; identity: deptype 'i') and whether a default of one of the tables
-- $1 (oid[]) calls it. Current values are read from each sequence separately.
SELECT c.oid AS oid,
       s.schemaname AS schema,
       s.sequencename AS name,
       format_type(s.data_type, NULL) AS data_type,
       s.start_value AS start_value,
       s.increment_by AS increment_by,
       s.min_value AS min_value,
       s.max_value AS max_value,
       s.cache_size AS cache_size,
       s.cycle AS cycle,
       d.refobjid AS owner_oid,
       owner_ns.nspname AS owner_schema,
       owner.relname AS owner_table,
       owner_col.attname AS owner_column,
       coalesce(d.deptype = 'i', false) AS identity,
       EXISTS (
         SELECT 1
         FROM pg_depend u
         JOIN pg_attrdef ad ON ad.oid = u.objid
         WHERE u.classid = 'pg_attrdef'::regclass
           AND u.refclassid = 'pg_class'::regclass
           AND u.refobjid = c.oid
           AND ad.adrelid = ANY ($1::oid[])
       ) AS used_by_selected,
       has_sequence_privilege(c.oid, 'SELECT') AS can_select
FROM pg_sequences s
JOIN pg_namespace n ON n.nspname = s.schemaname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename AND c.relkind = 'S'
LEFT JOIN pg_depend d
  ON d.classid = 'pg_class'::regclass
 AND d.objid = c.oid
 AND d.refclassid = 'pg_class'::regclass
 AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class owner ON owner.oid = d.refobjid
LEFT JOIN pg_namespace owner_ns ON owner_ns.oid = owner.relnamespace
LEFT JOIN pg_attribute owner_col ON owner_col.attrelid = d.refobjid AND owner_col.attnum = d.refobjsubid
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend e
    WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e'
  )
ORDER BY s.schemaname, s.sequencename;
