//! A private PostgreSQL primary and its streaming standby (scripts/lib/servers.sh,
//! `private_pg_pair_start`), for the failover and read-replica drills.

use std::path::Path;

/// Starting the pair (initdb, pg_basebackup) and every later script call end by this.
const SCRIPT_TIMEOUT_S: u32 = 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// A commit is acknowledged once the standby has flushed it.
    Synchronous,
    Asynchronous,
}

/// Both clusters are stopped and deleted on drop, also when the test fails.
pub struct PgPair {
    pub primary_dir: String,
    pub primary_port: u16,
    pub standby_dir: String,
    pub standby_port: u16,
}

impl PgPair {
    pub fn start(replication: Replication) -> Self {
        let flag = match replication {
            Replication::Synchronous => "",
            Replication::Asynchronous => "--async",
        };
        let started = super::servers(
            r#"if ! private_pg_pair_start $1; then
                 private_pg_stop "${PRIVATE_PG_STANDBY_DIR:-}"; private_pg_stop "${PRIVATE_PG_PRIMARY_DIR:-}"; private_pg_stop
                 exit 1
               fi
               printf '%s %s %s %s\n' "$PRIVATE_PG_PRIMARY_DIR" "$PRIVATE_PG_PRIMARY_PORT" \
                 "$PRIVATE_PG_STANDBY_DIR" "$PRIVATE_PG_STANDBY_PORT""#,
            &[flag],
            SCRIPT_TIMEOUT_S,
        )
        .unwrap_or_else(|stderr| {
            panic!(
                "could not start a private PostgreSQL primary and standby (initdb and pg_basebackup are \
                 needed: scripts/test installs them, or apt-get install postgresql):\n{stderr}"
            )
        });
        let fields: Vec<&str> = started.split_whitespace().collect();
        let [primary_dir, primary_port, standby_dir, standby_port] = fields[..] else {
            panic!("unexpected output {started:?}")
        };
        Self {
            primary_dir: primary_dir.into(),
            primary_port: primary_port.parse().unwrap(),
            standby_dir: standby_dir.into(),
            standby_port: standby_port.parse().unwrap(),
        }
    }

    /// A DATABASE_URL naming these ports, in this order, as one primary to follow.
    pub fn url(ports: &[u16]) -> String {
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("postgres://postgres@{}/postgres?target_session_attrs=read-write&connect_timeout=2", hosts.join(","))
    }

    pub fn primary_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.primary_port)
    }

    pub fn standby_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.standby_port)
    }

    /// Stops the primary at once, as a crash would.
    pub fn crash_primary(&self) {
        script(r#"private_pg_crash "$1""#, &self.primary_dir).expect("crash the primary");
    }

    pub fn promote_standby(&self) {
        script(r#"private_pg_promote "$1""#, &self.standby_dir).expect("promote the standby");
    }

    /// Stops the standby and deletes it.
    pub fn stop_standby(&self) {
        stop_cluster(&self.standby_dir);
    }
}

impl Drop for PgPair {
    fn drop(&mut self) {
        stop_cluster(&self.standby_dir);
        stop_cluster(&self.primary_dir);
    }
}

fn script(script: &str, dir: &str) -> Result<String, String> {
    super::servers(script, &[dir], SCRIPT_TIMEOUT_S)
}

/// Stops the private cluster in `dir` and deletes it (nothing if it is gone already).
fn stop_cluster(dir: &str) {
    if script(r#"private_pg_stop "$1""#, dir).is_err() || Path::new(dir).exists() {
        eprintln!("could not stop and delete the private cluster in {dir}");
    }
}
