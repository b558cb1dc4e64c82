#!/usr/bin/env bash
# Prepares this machine for Ferry's tests: PostgreSQL 15 with logical replication on two
# clusters (source-side 5432 "main", destination-side 5433 "ferrydest"), and Debian's
# Chromium for browser tests. Idempotent; installs what is missing (Debian packages), fixes
# settings, restarts a server only when a setting needs it. Run as root (or with sudo).
set -euo pipefail

log() { printf 'setup-test-env: %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  log "installing PostgreSQL"
  apt_install postgresql postgresql-contrib
fi
PGVER=$(ls /etc/postgresql | sort -V | tail -n 1)

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
}

ensure_cluster main 5432
ensure_cluster ferrydest 5433
# Fault tests stop and start these two; nothing else uses them.
ensure_cluster ferryfaultsrc 5434
ensure_cluster ferryfaultdst 5435

if ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian's chromium (browser tests)"
  apt_install chromium || log "chromium could not be installed; browser tests will be skipped"
fi

log "ready: PostgreSQL $PGVER on 127.0.0.1:5432 (main), 5433 (ferrydest), 5434 and 5435 (fault tests), wal_level=logical"
