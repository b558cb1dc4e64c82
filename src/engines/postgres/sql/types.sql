-- The types the columns of the tables $1 (oid[]) use, followed through arrays (element
-- type) and domains (base type), with what creating them needs: enum labels, domain base
-- type, default and checks, and the extension that provides the type, if any. Built-in
-- types (pg_catalog, information_schema) are left out.
WITH RECURSIVE used(oid) AS (
  SELECT a.atttypid
  FROM pg_attribute a
  WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
  UNION
  SELECT next.oid
  FROM used
  JOIN pg_type t ON t.oid = used.oid
  CROSS JOIN LATERAL (
    VALUES (CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem END),
           (CASE WHEN t.typtype = 'd' THEN t.typbasetype END)
  ) AS next(oid)
  WHERE next.oid IS NOT NULL
)
SELECT t.oid AS oid,
       n.nspname AS schema,
       t.typname AS name,
       t.typtype AS kind,
       CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem END AS element_oid,
       CASE WHEN t.typtype = 'd' THEN t.typbasetype END AS base_oid,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base_type,
       t.typnotnull AS not_null,
       t.typdefault AS default_expression,
       (SELECT coalesce(json_agg(e.enumlabel ORDER BY e.enumsortorder), '[]'::json)
        FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels,
       (SELECT coalesce(json_agg(json_build_object('name', c.conname, 'definition', pg_get_constraintdef(c.oid)) ORDER BY c.conname), '[]'::json)
        FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c') AS checks,
       x.extname AS extension
FROM used
JOIN pg_type t ON t.oid = used.oid
JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_depend d
  ON d.classid = 'pg_type'::regclass AND d.objid = t.oid
 AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
LEFT JOIN pg_extension x ON x.oid = d.refobjid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname, t.typname;
