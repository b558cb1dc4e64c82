#!/usr/bin/env bash
# Prepares this machine for Ferry's tests: PostgreSQL 15 with logical replication on two
# clusters (source-side 5432 "main", destination-side 5433 "ferrydest"), MariaDB with a row
# binlog (127.0.0.1:3306), a TLS-only cluster (5436 "ferrytls") with test certificates,
# openssh-server for SSH tunnel tests, PostGIS (postgresql-15-postgis-3) for spatial tests, and Debian's
# Chromium for browser tests. Idempotent; installs what is missing (Debian packages), fixes
# settings, restarts a server only when a setting needs it. Run as root (or with sudo).
set -euo pipefail

log() { printf 'setup-test-env: %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
die() { log "$*"; exit 1; }
apt_updated=0
# Returns non-zero when apt fails (callers that need the package use require_packages).
apt_install() {
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq || return 1; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# Every package the tests need: a failed install stops the setup, naming the package and who
# needs it. Nothing is skipped: a test whose tool is missing fails, it is never skipped.
require_packages() { # "what needs them" package...
  local why=$1
  shift
  apt_install "$@" || die "could not install $* (apt-get install $* failed; see its output above): $why. Fix the package sources (apt-get update) and run this script again."
}

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  log "installing PostgreSQL"
  require_packages "every test needs PostgreSQL" postgresql postgresql-contrib
fi
command -v pg_ctlcluster >/dev/null 2>&1 || die "pg_ctlcluster is missing after installing postgresql: install Debian's postgresql-common"
PGVER=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$PGVER" ] || die "no PostgreSQL version under /etc/postgresql after installing postgresql"


ensure_cluster() { # name port
  local name=$1 port=$2
  if [ ! -d "/etc/postgresql/$PGVER/$name" ]; then
    log "creating cluster $PGVER/$name on port $port"
    as_root pg_createcluster "$PGVER" "$name" --port "$port" -- --auth-local=trust --auth-host=trust >/dev/null
  fi
  local hba="/etc/postgresql/$PGVER/$name/pg_hba.conf"
  if ! as_root grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    # Tests connect over TCP as postgres without a password, replication included.
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nhost replication all ::1/128 trust' "$hba"
    need_reload=1
  fi
  if ! pg_lsclusters -h | awk -v n="$name" '$2==n {print $4}' | grep -q online; then
    log "starting cluster $name"
    as_root pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$name" start
  elif [ "${need_reload:-0}" = 1 ]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$name" reload
  fi
  local psqlc=(psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atq)
  local restart=0
  for setting in "wal_level=logical" "max_replication_slots=40" "max_wal_senders=40" "max_connections=200"; do
    local key=${setting%%=*} want=${setting#*=} have
    have=$("${psqlc[@]}" -c "SHOW $key")
    if [ "$have" != "$want" ]; then
      "${psqlc[@]}" -c "ALTER SYSTEM SET $key = '$want'"
      restart=1
    fi
  done
  if [ $restart = 1 ]; then
    log "restarting cluster $name to apply settings"
    as_root pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$name" restart
  fi
  "${psqlc[@]}" -c "SELECT 1" >/dev/null
  clear_leftovers "$name" "${psqlc[@]}"
}

# What a hung or killed earlier run left on a cluster: sessions of test and benchmark databases
# (ferry_*, bench_*) unchanged for 15 minutes (no test holds one that long: a stuck lock wait,
# a stale walsender) and their databases' inactive replication slots. One such session can
# block every slot creation on the cluster (it waits for running transactions), and each slot
# keeps WAL. Nothing else is touched.
clear_leftovers() {
  local name=$1
  shift
  local test_db="(datname LIKE 'ferry\_%' OR datname LIKE 'bench\_%')"
  local ended dropped
  ended=$("$@" -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE $test_db AND pid <> pg_backend_pid() AND coalesce(state_change, backend_start) < now() - interval '15 minutes'")
  # A terminated walsender releases its slot a moment later.
  [ "${ended:-0}" = 0 ] || sleep 1
  dropped=$("$@" -c "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE NOT active AND ${test_db//datname/database}")
  if [ "${ended:-0}" != 0 ] || [ "${dropped:-0}" != 0 ]; then
    log "cluster $name: ended $ended stale session(s) and dropped $dropped inactive slot(s) of test databases left by an earlier run"
  fi
}

ensure_cluster main 5432
ensure_cluster ferrydest 5433
# Fault tests stop and start these two; nothing else uses them.
ensure_cluster ferryfaultsrc 5434
ensure_cluster ferryfaultdst 5435

# TLS tests: a CA, a server certificate for localhost/127.0.0.1, a client certificate for the
# role ferry_tls_cert, and a second, unrelated CA (the "wrong CA" case). The PostgreSQL cluster
# ferrytls (5436) accepts only TLS over TCP (hostssl lines; trust over the Unix socket for
# setup); ferry_tls_cert must also present a client certificate (clientcert=verify-full).
# Test files read the certificates from here (the private MariaDB of test/e2e/tls.test.ts too).
TLS_DIR=/var/lib/postgresql/ferry-tls
ensure_tls_certificates() {
  if ! command -v openssl >/dev/null 2>&1; then require_packages "the TLS tests' certificates are made with it" openssl; fi
  command -v openssl >/dev/null 2>&1 || die "openssl is missing after installing it: the TLS tests' certificates are made with it"
  if as_root test -s "$TLS_DIR/client.key" && as_root test -s "$TLS_DIR/other-ca.crt"; then return 0; fi
  log "making test certificates in $TLS_DIR"
  as_root install -d -o postgres -g postgres -m 0755 "$TLS_DIR"
  local work
  work=$(mktemp -d)
  (
    cd "$work"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=Ferry test CA' -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=Unrelated test CA' -keyout other-ca.key -out other-ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile server.ext -out server.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj '/CN=ferry_tls_cert' -keyout client.key -out client.csr 2>/dev/null
    printf 'extendedKeyUsage = clientAuth\n' > client.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile client.ext -out client.crt 2>/dev/null
  )
  as_root install -o postgres -g postgres -m 0644 "$work/ca.crt" "$work/other-ca.crt" "$work/server.crt" "$work/client.crt" "$TLS_DIR/"
  as_root install -o postgres -g postgres -m 0600 "$work/server.key" "$work/client.key" "$TLS_DIR/"
  rm -rf "$work"
}
ensure_tls_certificates

ensure_tls_cluster() { # name port
  local name=$1 port=$2 conf_dir
  conf_dir="/etc/postgresql/$PGVER/$name"
  if [ ! -d "$conf_dir" ]; then
    log "creating TLS cluster $PGVER/$name on port $port"
    as_root pg_createcluster "$PGVER" "$name" --port "$port" -- --auth-local=trust --auth-host=reject >/dev/null
  fi
  local hba_text='# Written by scripts/setup-test-env.sh: TCP only over TLS.
local   all          all                          trust
hostssl all          ferry_tls_cert 127.0.0.0/8   trust clientcert=verify-full
hostssl replication  ferry_tls_cert 127.0.0.0/8   trust clientcert=verify-full
hostssl all          all            127.0.0.0/8   trust
hostssl replication  all            127.0.0.0/8   trust'
  local conf_text="# Written by scripts/setup-test-env.sh: TLS on, listening on 127.0.0.1 and 127.0.0.2 (the wrong-host-name case).
ssl = on
ssl_cert_file = '$TLS_DIR/server.crt'
ssl_key_file = '$TLS_DIR/server.key'
ssl_ca_file = '$TLS_DIR/ca.crt'
listen_addresses = '127.0.0.1,127.0.0.2'
wal_level = logical
max_replication_slots = 40
max_wal_senders = 40"
  local changed=0
  if [ "$(as_root cat "$conf_dir/pg_hba.conf")" != "$hba_text" ]; then
    printf '%s\n' "$hba_text" | as_root tee "$conf_dir/pg_hba.conf" >/dev/null; changed=1
  fi
  as_root install -d -o postgres -g postgres "$conf_dir/conf.d"
  if [ "$(as_root cat "$conf_dir/conf.d/ferry-tls.conf" 2>/dev/null || true)" != "$conf_text" ]; then
    printf '%s\n' "$conf_text" | as_root tee "$conf_dir/conf.d/ferry-tls.conf" >/dev/null; changed=1
  fi
  if ! pg_lsclusters -h | awk -v n="$name" '$2==n {print $4}' | grep -q online; then
    log "starting cluster $name"
    as_root pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$name" start
  elif [ $changed = 1 ]; then
    log "restarting cluster $name to apply its TLS settings"
    as_root pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$name" restart
  fi
  local psqls=(runuser -u postgres -- psql -h /var/run/postgresql -p "$port" -d postgres -Atq)
  "${psqls[@]}" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferry_tls_cert') THEN CREATE ROLE ferry_tls_cert LOGIN SUPERUSER REPLICATION; END IF; END \$\$"
  if [ "$("${psqls[@]}" -c 'SHOW ssl')" != on ] || [ "$("${psqls[@]}" -c 'SHOW wal_level')" != logical ]; then
    log "cluster $name does not have ssl = on and wal_level = logical; see /var/log/postgresql/postgresql-$PGVER-$name.log"
    exit 1
  fi
}
ensure_tls_cluster ferrytls 5436

# MariaDB 10.11 on 127.0.0.1:3306 (root over TCP without a password) with the row binlog the
# MySQL change reader needs and LOAD DATA LOCAL INFILE for the MySQL table writer.
MARIADB_CNF_DIR=/etc/mysql/mariadb.conf.d
MARIADB_CNF=$MARIADB_CNF_DIR/60-ferry-test.cnf
MARIADB_CNF_TEXT='# Written by scripts/setup-test-env.sh: the settings Ferry'"'"'s MySQL tests need.
[mariadbd]
server_id = 1
log_bin = /var/log/mysql/mariadb-bin
binlog_format = ROW
binlog_row_image = FULL
local_infile = ON
max_connections = 300
# A temporary directory of its own: a mariadbd starting with the same tmpdir (the tests start
# private servers) deletes every #sql* file there, including the live temporary tables of this server
# which then fail (10.11 crashes with signal 11 in create_tmp_table_for_schema).
tmpdir = /var/lib/mysql-tmp'
mariadb_ping() { mysqladmin --protocol=socket -uroot ping >/dev/null 2>&1; }
mariadb_start() {
  as_root install -d -o mysql -g mysql -m 0755 /run/mysqld /var/log/mysql
  as_root install -d -o mysql -g mysql -m 0750 /var/lib/mysql-tmp
  # --pidfile: the tests' private mariadbd processes must not count as this server running.
  as_root start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid --exec /usr/sbin/mariadbd -- --user=mysql
  for _ in $(seq 1 120); do mariadb_ping && return 0; sleep 0.5; done
  log "MariaDB did not answer within 60 s; see /var/log/mysql/error.log"
  return 1
}
mariadb_stop() {
  local pid
  pid=$(as_root cat /run/mysqld/mysqld.pid 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  as_root kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 120); do as_root kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  log "MariaDB (pid $pid) did not stop within 60 s"
  return 1
}
if ! command -v mariadbd >/dev/null 2>&1; then
  log "installing MariaDB"
  require_packages "the MySQL/MariaDB tests need MariaDB 10.11" mariadb-server
fi
command -v mariadbd >/dev/null 2>&1 || die "mariadbd is missing after installing mariadb-server: the MySQL/MariaDB tests need it"
mariadb_restart=0
as_root mkdir -p "$MARIADB_CNF_DIR"
if [ "$(as_root cat "$MARIADB_CNF" 2>/dev/null || true)" != "$MARIADB_CNF_TEXT" ]; then
  printf '%s\n' "$MARIADB_CNF_TEXT" | as_root tee "$MARIADB_CNF" >/dev/null
  mariadb_restart=1
fi
# Debian's my.cnf reads mariadb.conf.d; a hand-written one may not.
if [ -f /etc/mysql/my.cnf ] && ! as_root grep -qsE '^!includedir /etc/mysql/mariadb.conf.d/?$' /etc/mysql/my.cnf /etc/mysql/mariadb.cnf; then
  printf '\n!includedir /etc/mysql/mariadb.conf.d/\n' | as_root tee -a /etc/mysql/my.cnf >/dev/null
  mariadb_restart=1
fi
if ! mariadb_ping; then
  log "starting MariaDB"
  mariadb_start
  mariadb_restart=0
fi
live=$(mariadb --protocol=socket -uroot -N -B -e "SELECT CONCAT_WS(',', @@log_bin + 0, @@binlog_format, @@binlog_row_image, @@server_id <> 0, @@local_infile + 0)")
if [ "$live" != "1,ROW,FULL,1,1" ]; then mariadb_restart=1; fi
if [ $mariadb_restart = 1 ]; then
  log "restarting MariaDB to apply $MARIADB_CNF (live: log_bin,format,row_image,server_id,local_infile = $live)"
  mariadb_stop
  mariadb_start
fi
# Tests connect over TCP as root without a password (Debian's root@localhost uses unix_socket).
if ! mariadb --protocol=tcp -h 127.0.0.1 -uroot -e 'SELECT 1' >/dev/null 2>&1; then
  log "allowing root over TCP from 127.0.0.1 without a password"
  mariadb --protocol=socket -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; CREATE USER IF NOT EXISTS 'root'@'localhost'; ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD(''); GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION"
fi
live=$(mariadb --protocol=tcp -h 127.0.0.1 -uroot -N -B -e "SELECT CONCAT_WS(',', @@log_bin + 0, @@binlog_format, @@binlog_row_image, @@server_id <> 0, @@local_infile + 0)")
if [ "$live" != "1,ROW,FULL,1,1" ]; then
  log "MariaDB settings are not as $MARIADB_CNF sets them (log_bin,format,row_image,server_id,local_infile = $live); check /var/log/mysql/error.log"
  exit 1
fi

# The whole-database tests (issue 11) load the contrib extensions citext and btree_gist; the
# whole-database benchmark (npm run bench:whole-db) runs pgcopydb next to Ferry.
for ext in citext btree_gist; do
  if [ ! -f "/usr/share/postgresql/$PGVER/extension/$ext.control" ]; then
    log "installing postgresql-contrib (the $ext extension)"
    apt_install "postgresql-contrib-$PGVER" || require_packages "the whole-database tests load the $ext extension" postgresql-contrib
  fi
  if [ ! -f "/usr/share/postgresql/$PGVER/extension/$ext.control" ]; then
    log "the $ext extension is missing from /usr/share/postgresql/$PGVER/extension: install Debian's postgresql-contrib"
    exit 1
  fi
done
if ! command -v pgcopydb >/dev/null 2>&1; then
  log "installing pgcopydb (the whole-database benchmark)"
  require_packages "npm run bench:whole-db runs pgcopydb next to Ferry" pgcopydb
fi
command -v pgcopydb >/dev/null 2>&1 || die "pgcopydb is missing after installing it: npm run bench:whole-db needs it"

# Spatial tests (issue 12) create PostGIS in their own databases: MySQL spatial columns map to
# PostGIS geometry, and PostGIS columns to MySQL spatial types.
if [ ! -f "/usr/share/postgresql/$PGVER/extension/postgis.control" ]; then
  log "installing postgresql-$PGVER-postgis-3 (spatial tests)"
  require_packages "the spatial tests need PostGIS" "postgresql-$PGVER-postgis-3"
fi
if [ ! -f "/usr/share/postgresql/$PGVER/extension/postgis.control" ]; then
  log "the postgis extension is missing from /usr/share/postgresql/$PGVER/extension after installing postgresql-$PGVER-postgis-3"
  exit 1
fi

if ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian's chromium (browser tests)"
  require_packages "the console's browser tests drive Debian's Chromium (they fail without it, they are not skipped)" chromium
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing after installing chromium: the browser tests launch that path (test/helpers/browser.ts)"

# SSH tunnel tests start their own sshd (own config, host key and port) from Debian's openssh-server.
if [ ! -x /usr/sbin/sshd ]; then
  log "installing openssh-server (SSH tunnel tests)"
  require_packages "the SSH tunnel tests start their own sshd" openssh-server
fi
if [ ! -x /usr/sbin/sshd ]; then log "openssh-server could not be installed: /usr/sbin/sshd is missing"; exit 1; fi

log "ready: PostgreSQL $PGVER on 127.0.0.1:5432 (main), 5433 (ferrydest), 5434 and 5435 (fault tests), wal_level=logical; 5436 (ferrytls, TLS only, certificates in $TLS_DIR); MariaDB on 127.0.0.1:3306 with the row binlog; PostGIS; sshd for tunnel tests"
