-- The settings that matter for migration, as (Variable_name, Value) rows. Variables that one
-- of MySQL and MariaDB lacks are simply absent. SHOW works on both (MySQL 8 has no
-- information_schema.GLOBAL_VARIABLES).
SHOW GLOBAL VARIABLES WHERE Variable_name IN (
  'version', 'version_comment', 'log_bin', 'binlog_format', 'binlog_row_image', 'server_id',
  'gtid_mode', 'gtid_strict_mode', 'gtid_domain_id', 'binlog_expire_logs_seconds', 'expire_logs_days',
  'local_infile', 'lower_case_table_names', 'sql_mode', 'max_allowed_packet', 'binlog_row_metadata',
  'character_set_server', 'read_only', 'max_connections'
);
