#!/bin/sh
# Runs once, when the primary's data folder is created (docker-entrypoint-initdb.d): the
# role the standby streams as, allowed to connect for replication with a password.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$POSTGRES_REPLICATION_PASSWORD" \
  -c "CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password'"
echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
