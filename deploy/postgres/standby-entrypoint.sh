#!/bin/bash
# The standby of deploy/compose.yaml: on first start, a copy of the primary taken with
# pg_basebackup (-R: standby.signal and primary_conninfo, whose application_name is the
# name the primary's synchronous_standby_names waits for); then PostgreSQL in recovery.
# After a promotion it starts as a primary from its own data.
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  for attempt in $(seq 1 60); do
    if pg_basebackup -h postgres -U replicator -D "$PGDATA" -R -X stream \
      -d "application_name=standby"; then
      break
    fi
    echo "pg_basebackup failed (attempt $attempt); retrying in 2 s" >&2
    rm -rf "${PGDATA:?}"/*
    sleep 2
  done
  [ -s "$PGDATA/PG_VERSION" ] || { echo "no base backup after 60 attempts" >&2; exit 1; }
  chmod 700 "$PGDATA"
fi
# Promoted, it has no standby of its own: it must not wait for one.
exec postgres -c hot_standby=on -c synchronous_standby_names=
