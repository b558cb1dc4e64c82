-- The server version and the settings that matter for migration, and what the current
-- role may do. Runs on PostgreSQL 12 and later: max_slot_wal_keep_size (13+) is read with
-- missing_ok, so it is NULL on 12.
SELECT current_setting('server_version') AS server_version,
       current_setting('server_version_num')::int AS server_version_num,
       current_setting('wal_level') AS wal_level,
       current_setting('max_replication_slots') AS max_replication_slots,
       current_setting('max_wal_senders') AS max_wal_senders,
       current_setting('max_slot_wal_keep_size', true) AS max_slot_wal_keep_size,
       current_setting('server_encoding') AS server_encoding,
       r.rolsuper AS superuser,
       r.rolreplication AS replication,
       r.rolcreatedb AS createdb,
       current_user AS current_user,
       current_database() AS current_database,
       (SELECT count(*) FROM pg_replication_slots) AS replication_slots_used,
       (SELECT count(*) FROM pg_stat_replication) AS wal_senders_used
FROM pg_roles r
WHERE r.rolname = current_user;
