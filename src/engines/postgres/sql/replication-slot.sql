-- The replication slot $1 (name), if it exists: whether it can serve a job of this database
-- and where a reader that has applied nothing starts. Runs on PostgreSQL 12 and later:
-- wal_status arrives in 13, so it is read from the row as JSON (NULL on 12, where a slot is
-- never invalidated for lack of WAL).
SELECT s.slot_type,
       s.plugin,
       s.database,
       s.database = current_database() AS same_database,
       to_jsonb(s) ->> 'wal_status' AS wal_status,
       s.confirmed_flush_lsn::text AS confirmed_flush_lsn
FROM pg_replication_slots s
WHERE s.slot_name = $1;
