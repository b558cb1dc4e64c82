-- The roles that the objects of the given schemas grant privileges to (tables, views,
-- sequences, columns, routines, types, the schemas themselves): a destination without one
-- of them gets those GRANTs left out. $1: the schema names.
SELECT DISTINCT r.rolname AS role
FROM (
  SELECT c.relacl AS acl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1)
  UNION ALL
  SELECT a.attacl FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY($1) AND a.attacl IS NOT NULL
  UNION ALL
  SELECT p.proacl FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY($1)
  UNION ALL
  SELECT t.typacl FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = ANY($1)
  UNION ALL
  SELECT n.nspacl FROM pg_namespace n WHERE n.nspname = ANY($1)
) x
CROSS JOIN LATERAL aclexplode(x.acl) e
JOIN pg_roles r ON r.oid = e.grantee
WHERE x.acl IS NOT NULL
ORDER BY 1;
