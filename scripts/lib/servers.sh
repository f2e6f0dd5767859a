# shellcheck shell=bash
# Private, throwaway PostgreSQL clusters and NATS JetStream servers, for tests and scripts.
# Nothing here touches a server the caller did not start: each server gets a fresh temporary
# folder, a free port on 127.0.0.1, and is stopped and deleted by servers_stop_all.
#
#   source scripts/lib/servers.sh
#   servers_cleanup_on_exit   # stop both and delete their folders on exit, failure or ^C
#   private_pg_start          # PRIVATE_PG_URL PRIVATE_PG_PORT PRIVATE_PG_DIR
#   private_pg_start --tls    # also ssl=on, server cert for localhost/127.0.0.1 signed by
#                             # a fresh CA: PRIVATE_PG_CA (its certificate, PEM)
#   private_nats_start        # PRIVATE_NATS_URL PRIVATE_NATS_PORT PRIVATE_NATS_DIR PRIVATE_NATS_PID
#   private_pg_pair_start     # a primary and a streaming standby (pg_basebackup), synchronous
#                             # replication; --async for asynchronous. PRIVATE_PG_PRIMARY_{DIR,PORT,URL}
#                             # PRIVATE_PG_STANDBY_{DIR,PORT,URL}; stop each with private_pg_stop DIR
#   private_pg_promote DIR    # promotes the standby in DIR (pg_ctl promote, waits)
#   private_pg_crash DIR      # stops the cluster in DIR at once (pg_ctl -m immediate), as a crash
#   private_nats_cluster_start  # 3 JetStream servers n1 n2 n3 routed into one cluster:
#                             # PRIVATE_NATS_CLUSTER_DIR, _URLS (comma-separated), _PIDS, _NAMES,
#                             # _NODE_DIRS (space-separated, in the order n1 n2 n3)
#   private_nats_node_start NODE_DIR  # (re)starts one stopped or killed node from its nats.conf
#   servers_stop_all          # safe to call more than once
#
# Postgres runs as the `postgres` OS user when we are root (initdb refuses root), with trust
# auth inside that private cluster only; its unix socket lives in its own folder.

SERVERS_START_TIMEOUT_S=${SERVERS_START_TIMEOUT_S:-30}

servers_log() { printf '[servers] %s\n' "$*" >&2; }

servers_as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# servers_apt_install PACKAGE... : installs the packages with apt-get (callers check first
# that what they need is absent).
servers_apt_install() {
  servers_log "installing $* with apt-get"
  servers_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  servers_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

servers_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nothing answers on (the server start retries if another process takes it first).
servers_free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    servers_answers "$port" || { echo "$port"; return 0; }
  done
  servers_log "no free port found"; return 1
}

# The folder holding initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin.
servers_pg_bindir() {
  local initdb dir
  if initdb=$(command -v initdb 2>/dev/null); then
    dirname "$(readlink -f "$initdb")"; return 0
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

servers_have_postgres() { servers_pg_bindir >/dev/null; }
servers_nats_bin() { command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; }; }

# Runs a command as the owner of the private cluster: postgres when we are root.
# True while the process runs (a zombie waiting for its parent to reap it counts as gone).
servers_running() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -qE '^[0-9]+ \(.*\) Z' "/proc/$1/stat" 2>/dev/null
}

# Waits up to 10 s for a process to end.
servers_wait_gone() {
  for _ in $(seq 1 100); do servers_running "$1" || return 0; sleep 0.1; done
  return 1
}

servers_as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# servers_make_ca DIR NAME : a self-signed CA, DIR/NAME.crt and DIR/NAME.key.
servers_make_ca() {
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$1/$2.key" -out "$1/$2.crt" 2>/dev/null
}

# servers_make_server_cert DIR CA : DIR/server.crt and DIR/server.key for localhost and
# 127.0.0.1, signed by DIR/CA.crt.
servers_make_server_cert() {
  local dir=$1 ca=$2
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
}

# servers_pg_launch DIR [CONF_LINE...] : starts the cluster in DIR/data on a free port, its
# socket in DIR/sock, with extra settings on the command line; sets SERVERS_PG_PORT.
servers_pg_launch() {
  local dir=$1 bin attempt opts setting
  shift
  bin=$(servers_pg_bindir) || return 1
  for attempt in 1 2 3; do
    SERVERS_PG_PORT=$(servers_free_port) || return 1
    opts="-p $SERVERS_PG_PORT -k $dir/sock"
    for setting in "$@"; do opts="$opts -c $setting"; done
    if servers_as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "$opts" -w \
      -t "$SERVERS_START_TIMEOUT_S" start >/dev/null; then
      return 0
    fi
    servers_log "PostgreSQL ($dir) did not start on port $SERVERS_PG_PORT (attempt $attempt); its log:"
    tail -5 "$dir/postgres.log" >&2 || true
    servers_as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  done
  return 1
}

private_pg_start() {
  local tls=0 bin
  [ "${1:-}" = --tls ] && tls=1
  if ! bin=$(servers_pg_bindir); then
    servers_log "initdb not found: install PostgreSQL (apt-get install postgresql)"; return 1
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    servers_log "running as root needs a 'postgres' OS user to own the private cluster"; return 1
  fi
  PRIVATE_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/private-pg.XXXXXX")
  mkdir -p "$PRIVATE_PG_DIR/sock"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$PRIVATE_PG_DIR"
  if ! servers_as_pg "$bin/initdb" -D "$PRIVATE_PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync \
    >"$PRIVATE_PG_DIR/initdb.log" 2>&1; then
    cat "$PRIVATE_PG_DIR/initdb.log" >&2; servers_log "initdb failed"; return 1
  fi
  # Appended by us (root or not); the file stays the cluster owner's.
  cat >>"$PRIVATE_PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PRIVATE_PG_DIR/sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  PRIVATE_PG_CA=
  if [ "$tls" = 1 ]; then
    command -v openssl >/dev/null 2>&1 || { servers_log "openssl not found (apt-get install openssl)"; return 1; }
    local certs="$PRIVATE_PG_DIR/tls"
    mkdir -p "$certs"
    servers_make_ca "$certs" ca && servers_make_server_cert "$certs" ca || { servers_log "openssl failed"; return 1; }
    [ "$(id -u)" = 0 ] && chown -R postgres: "$certs"
    chmod 600 "$certs/server.key"
    chmod 755 "$PRIVATE_PG_DIR" "$certs" && chmod 644 "$certs/ca.crt" # the CA is public
    printf '%s\n' "ssl = on" "ssl_cert_file = '$certs/server.crt'" "ssl_key_file = '$certs/server.key'" \
      >>"$PRIVATE_PG_DIR/data/postgresql.conf"
    PRIVATE_PG_CA="$certs/ca.crt"
  fi
  servers_pg_launch "$PRIVATE_PG_DIR" || return 1
  PRIVATE_PG_PORT=$SERVERS_PG_PORT
  PRIVATE_PG_URL="postgres://postgres@127.0.0.1:$PRIVATE_PG_PORT/postgres"
  export PRIVATE_PG_DIR PRIVATE_PG_PORT PRIVATE_PG_URL PRIVATE_PG_CA
  servers_log "private PostgreSQL on 127.0.0.1:$PRIVATE_PG_PORT ($PRIVATE_PG_DIR)"
}

# private_pg_stop [DIR] : stops the cluster in DIR (default $PRIVATE_PG_DIR), deletes DIR.
private_pg_stop() {
  local dir=${1:-${PRIVATE_PG_DIR:-}} bin pid
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if [ -f "$dir/data/postmaster.pid" ] && bin=$(servers_pg_bindir); then
    pid=$(head -1 "$dir/data/postmaster.pid")
    servers_as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t "$SERVERS_START_TIMEOUT_S" stop >/dev/null 2>&1 \
      || servers_as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    servers_wait_gone "$pid" || { kill -9 "$pid" 2>/dev/null || true; }
  fi
  rm -rf "$dir"
  [ "$dir" = "${PRIVATE_PG_DIR:-}" ] && PRIVATE_PG_DIR=
  return 0
}

# A primary and a streaming standby cloned from it with pg_basebackup. Synchronous
# replication by default (a commit is acknowledged once the standby has flushed it, so
# promoting the standby loses no acknowledged commit); --async for asynchronous.
private_pg_pair_start() {
  local sync=1 bin
  [ "${1:-}" = --async ] && sync=0
  private_pg_start || return 1
  PRIVATE_PG_PRIMARY_DIR=$PRIVATE_PG_DIR PRIVATE_PG_PRIMARY_PORT=$PRIVATE_PG_PORT
  PRIVATE_PG_PRIMARY_URL=$PRIVATE_PG_URL
  # The pair is stopped by DIR, not by private_pg_stop's default.
  PRIVATE_PG_DIR=
  bin=$(servers_pg_bindir) || return 1
  local primary_conf="$PRIVATE_PG_PRIMARY_DIR/data/postgresql.conf"
  printf '%s\n' "wal_level = replica" "max_wal_senders = 10" "hot_standby = on" \
    "wal_keep_size = '256MB'" "synchronous_commit = on" >>"$primary_conf"
  [ "$sync" = 1 ] && printf '%s\n' "synchronous_standby_names = 'standby'" >>"$primary_conf"
  servers_as_pg "$bin/pg_ctl" -D "$PRIVATE_PG_PRIMARY_DIR/data" -w -t "$SERVERS_START_TIMEOUT_S" \
    -o "-p $PRIVATE_PG_PRIMARY_PORT" -l "$PRIVATE_PG_PRIMARY_DIR/postgres.log" restart >/dev/null \
    || { servers_log "the primary did not restart with replication settings"; return 1; }
  PRIVATE_PG_STANDBY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/private-pg-standby.XXXXXX")
  mkdir -p "$PRIVATE_PG_STANDBY_DIR/sock"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$PRIVATE_PG_STANDBY_DIR"
  if ! servers_as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$PRIVATE_PG_PRIMARY_PORT" -U postgres \
    -D "$PRIVATE_PG_STANDBY_DIR/data" -R -X stream --no-sync >"$PRIVATE_PG_STANDBY_DIR/basebackup.log" 2>&1; then
    cat "$PRIVATE_PG_STANDBY_DIR/basebackup.log" >&2; servers_log "pg_basebackup failed"; return 1
  fi
  # The name the primary's synchronous_standby_names waits for (the later line wins), and
  # none of its own: promoted, it has no standby, and would otherwise wait forever.
  printf '%s\n' "primary_conninfo = 'host=127.0.0.1 port=$PRIVATE_PG_PRIMARY_PORT user=postgres application_name=standby'" \
    "synchronous_standby_names = ''" >>"$PRIVATE_PG_STANDBY_DIR/data/postgresql.auto.conf"
  servers_pg_launch "$PRIVATE_PG_STANDBY_DIR" || { servers_log "the standby did not start"; return 1; }
  PRIVATE_PG_STANDBY_PORT=$SERVERS_PG_PORT
  PRIVATE_PG_STANDBY_URL="postgres://postgres@127.0.0.1:$PRIVATE_PG_STANDBY_PORT/postgres"
  local want=async state=
  [ "$sync" = 1 ] && want=sync
  for _ in $(seq 1 $((SERVERS_START_TIMEOUT_S * 10))); do
    state=$(servers_as_pg "$bin/psql" -h 127.0.0.1 -p "$PRIVATE_PG_PRIMARY_PORT" -U postgres -d postgres -Atc \
      "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby' AND state = 'streaming'" 2>/dev/null)
    [ "$state" = "$want" ] && break
    sleep 0.1
  done
  if [ "$state" != "$want" ]; then
    servers_log "the standby is not streaming ($want) after ${SERVERS_START_TIMEOUT_S}s; its log:"
    tail -5 "$PRIVATE_PG_STANDBY_DIR/postgres.log" >&2 || true
    return 1
  fi
  export PRIVATE_PG_PRIMARY_DIR PRIVATE_PG_PRIMARY_PORT PRIVATE_PG_PRIMARY_URL
  export PRIVATE_PG_STANDBY_DIR PRIVATE_PG_STANDBY_PORT PRIVATE_PG_STANDBY_URL
  servers_log "private PostgreSQL pair: primary 127.0.0.1:$PRIVATE_PG_PRIMARY_PORT, standby 127.0.0.1:$PRIVATE_PG_STANDBY_PORT ($want)"
}

# private_pg_promote DIR : promotes the standby in DIR and waits until it takes writes.
private_pg_promote() {
  local bin
  bin=$(servers_pg_bindir) || return 1
  servers_as_pg "$bin/pg_ctl" -D "$1/data" -w -t "$SERVERS_START_TIMEOUT_S" promote >/dev/null
}

# private_pg_crash DIR : stops the cluster in DIR at once, as a crash would (no shutdown
# checkpoint, clients cut off); its folder stays, for private_pg_stop DIR to delete.
private_pg_crash() {
  local bin
  bin=$(servers_pg_bindir) || return 1
  servers_as_pg "$bin/pg_ctl" -D "$1/data" -m immediate -w -t "$SERVERS_START_TIMEOUT_S" stop >/dev/null
}

private_nats_start() {
  local bin attempt
  if ! bin=$(servers_nats_bin); then
    servers_log "nats-server not found (apt-get install nats-server)"; return 1
  fi
  PRIVATE_NATS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/private-nats.XXXXXX")
  for attempt in 1 2 3; do
    PRIVATE_NATS_PORT=$(servers_free_port) || return 1
    : >"$PRIVATE_NATS_DIR/nats.log"
    "$bin" -a 127.0.0.1 -p "$PRIVATE_NATS_PORT" -js -sd "$PRIVATE_NATS_DIR/jetstream" \
      -l "$PRIVATE_NATS_DIR/nats.log" </dev/null >/dev/null 2>&1 &
    PRIVATE_NATS_PID=$!
    for _ in $(seq 1 $((SERVERS_START_TIMEOUT_S * 10))); do
      kill -0 "$PRIVATE_NATS_PID" 2>/dev/null || break
      if grep -q "Server is ready" "$PRIVATE_NATS_DIR/nats.log" && servers_answers "$PRIVATE_NATS_PORT"; then
        PRIVATE_NATS_URL="nats://127.0.0.1:$PRIVATE_NATS_PORT"
        export PRIVATE_NATS_DIR PRIVATE_NATS_PORT PRIVATE_NATS_PID PRIVATE_NATS_URL
        servers_log "private NATS JetStream on 127.0.0.1:$PRIVATE_NATS_PORT ($PRIVATE_NATS_DIR)"
        return 0
      fi
      sleep 0.1
    done
    servers_log "NATS did not start on port $PRIVATE_NATS_PORT (attempt $attempt); its log:"
    tail -5 "$PRIVATE_NATS_DIR/nats.log" >&2 || true
    kill "$PRIVATE_NATS_PID" 2>/dev/null || true
    wait "$PRIVATE_NATS_PID" 2>/dev/null || true
  done
  PRIVATE_NATS_PID=
  return 1
}

private_nats_stop() {
  if [ -n "${PRIVATE_NATS_PID:-}" ]; then
    kill "$PRIVATE_NATS_PID" 2>/dev/null || true
    servers_wait_gone "$PRIVATE_NATS_PID" || { kill -9 "$PRIVATE_NATS_PID" 2>/dev/null || true; }
    wait "$PRIVATE_NATS_PID" 2>/dev/null || true
    PRIVATE_NATS_PID=
  fi
  if [ -n "${PRIVATE_NATS_DIR:-}" ]; then rm -rf "$PRIVATE_NATS_DIR"; PRIVATE_NATS_DIR=; fi
  return 0
}

# The configuration of one cluster node (see private_nats_cluster_start).
# servers_nats_node_conf NAME DIR CLIENT_PORT CLUSTER_PORT CLUSTER_NAME ROUTE_PORT...
servers_nats_node_conf() {
  local name=$1 dir=$2 port=$3 cport=$4 cluster=$5 routes="" p
  shift 5
  for p in "$@"; do routes="$routes    nats-route://127.0.0.1:$p\n"; done
  printf '%b' "server_name: $name
listen: 127.0.0.1:$port
pid_file: \"$dir/nats.pid\"
log_file: \"$dir/nats.log\"
jetstream {
  store_dir: \"$dir/jetstream\"
  max_memory_store: 64MB
  max_file_store: 1GB
}
cluster {
  name: $cluster
  listen: 127.0.0.1:$cport
  routes: [
$routes  ]
}
" >"$dir/nats.conf"
}

# private_nats_node_start NODE_DIR : starts the node whose nats.conf is in NODE_DIR, in the
# background, and prints its pid (its data stays: a restarted node catches up).
private_nats_node_start() {
  local dir=$1 bin pid
  bin=$(servers_nats_bin) || { servers_log "nats-server not found (apt-get install nats-server)"; return 1; }
  "$bin" -c "$dir/nats.conf" </dev/null >>"$dir/nats.out" 2>&1 &
  pid=$!
  echo "$pid"
}

# True once every node's log names a JetStream metadata leader (the cluster has a quorum
# and every node knows it).
servers_nats_cluster_ready() {
  local dir
  for dir in "$@"; do
    grep -q "metadata leader" "$dir/nats.log" 2>/dev/null || return 1
  done
}

private_nats_cluster_start() {
  local attempt i names=(n1 n2 n3) ports cports dirs pids urls ready
  if ! servers_nats_bin >/dev/null; then
    servers_log "nats-server not found (apt-get install nats-server)"; return 1
  fi
  PRIVATE_NATS_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/private-nats-cluster.XXXXXX")
  for attempt in 1 2 3; do
    ports=() cports=() dirs=() pids=() urls=()
    for i in 0 1 2; do
      ports+=("$(servers_free_port)") && cports+=("$(servers_free_port)") || return 1
      dirs+=("$PRIVATE_NATS_CLUSTER_DIR/${names[$i]}")
      rm -rf "${dirs[$i]}" && mkdir -p "${dirs[$i]}"
    done
    for i in 0 1 2; do
      servers_nats_node_conf "${names[$i]}" "${dirs[$i]}" "${ports[$i]}" "${cports[$i]}" "ledger-$$" "${cports[@]}"
      pids+=("$(private_nats_node_start "${dirs[$i]}")")
      urls+=("nats://127.0.0.1:${ports[$i]}")
    done
    ready=0
    for _ in $(seq 1 $((SERVERS_START_TIMEOUT_S * 10))); do
      for i in 0 1 2; do servers_running "${pids[$i]}" || break 2; done
      if servers_nats_cluster_ready "${dirs[@]}"; then ready=1; break; fi
      sleep 0.1
    done
    if [ "$ready" = 1 ]; then
      PRIVATE_NATS_CLUSTER_URLS=$(IFS=,; echo "${urls[*]}")
      PRIVATE_NATS_CLUSTER_PIDS="${pids[*]}"
      PRIVATE_NATS_CLUSTER_NAMES="${names[*]}"
      PRIVATE_NATS_CLUSTER_NODE_DIRS="${dirs[*]}"
      export PRIVATE_NATS_CLUSTER_DIR PRIVATE_NATS_CLUSTER_URLS PRIVATE_NATS_CLUSTER_PIDS \
        PRIVATE_NATS_CLUSTER_NAMES PRIVATE_NATS_CLUSTER_NODE_DIRS
      servers_log "private NATS JetStream cluster on $PRIVATE_NATS_CLUSTER_URLS ($PRIVATE_NATS_CLUSTER_DIR)"
      return 0
    fi
    servers_log "the NATS cluster did not form (attempt $attempt); its logs:"
    for i in 0 1 2; do tail -3 "${dirs[$i]}/nats.log" >&2 2>/dev/null || true; done
    servers_nats_cluster_kill "$PRIVATE_NATS_CLUSTER_DIR"
  done
  private_nats_cluster_stop
  return 1
}

# Stops every node of the cluster in DIR whose pid file still names a running nats-server
# of that folder (a pid reused by another process is left alone).
servers_nats_cluster_kill() {
  local dir=$1 pidfile pid
  for pidfile in "$dir"/*/nats.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if servers_running "$pid" && grep -qF "$dir" "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      servers_wait_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

# private_nats_cluster_stop [DIR] : stops the cluster in DIR (default
# $PRIVATE_NATS_CLUSTER_DIR) and deletes DIR.
private_nats_cluster_stop() {
  local dir=${1:-${PRIVATE_NATS_CLUSTER_DIR:-}}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  servers_nats_cluster_kill "$dir"
  rm -rf "$dir"
  [ "$dir" = "${PRIVATE_NATS_CLUSTER_DIR:-}" ] && PRIVATE_NATS_CLUSTER_DIR=
  return 0
}

servers_stop_all() {
  private_nats_cluster_stop
  private_nats_stop
  private_pg_stop
}

# Installs traps: servers_stop_all on exit, and an exit (so the EXIT trap runs) on ^C,
# TERM and HUP. Callers with their own EXIT trap call servers_stop_all from it instead.
servers_cleanup_on_exit() {
  trap servers_stop_all EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}
