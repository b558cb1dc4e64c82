-- Whether the current role may create schemas in this database, and objects in each of
-- the schemas $1 (text[]) that exist.
SELECT NULL::name AS schema,
       has_database_privilege(current_database(), 'CREATE') AS can_create,
       current_user AS current_user,
       current_database() AS current_database
UNION ALL
SELECT n.nspname, has_schema_privilege(n.oid, 'CREATE'), current_user, current_database()
FROM pg_namespace n
WHERE n.nspname = ANY ($1::text[]);
