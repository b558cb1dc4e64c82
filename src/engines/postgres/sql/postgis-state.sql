-- Whether PostGIS is installed in the current database, whether the server has its files
-- (pg_available_extensions lists the extensions whose control file is installed), and
-- whether the current role may create it (postgis is not a trusted extension: superusers only).
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'postgis') AS installed_version,
       (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis') AS installed_schema,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis') AS available,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       current_setting('server_version_num')::int / 10000 AS major,
       current_database() AS database;
