//! Postgres over TLS (issue 13): sqlx is built with rustls, and `sslmode` / `sslrootcert`
//! in DATABASE_URL are honoured. The test starts its own private cluster with ssl=on and a
//! server certificate for 127.0.0.1 signed by a fresh CA (scripts/lib/servers.sh), and
//! stops and deletes it at the end. It needs PostgreSQL's initdb and openssl (scripts/test
//! installs them) and fails, rather than skips, without them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

fn servers_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/servers.sh")
}

/// A private cluster with ssl=on; stopped and deleted on drop, also when the test fails.
struct TlsCluster {
    dir: String,
    port: u16,
    ca: String,
    /// A CA that did not sign the server's certificate.
    other_ca: String,
}

impl TlsCluster {
    fn start() -> Self {
        // private_pg_start bounds each start attempt (pg_ctl -w -t 30); `timeout` bounds the rest.
        let script = r#"
            source "$0" || exit 1
            private_pg_start --tls || { status=$?; private_pg_stop; exit $status; }
            servers_make_ca "$PRIVATE_PG_DIR/tls" other || { private_pg_stop; exit 1; }
            printf '%s %s %s %s\n' "$PRIVATE_PG_DIR" "$PRIVATE_PG_PORT" "$PRIVATE_PG_CA" "$PRIVATE_PG_DIR/tls/other.crt"
        "#;
        let output = Command::new("timeout")
            .args(["150", "bash", "-c", script])
            .arg(servers_sh())
            .output()
            .expect("run bash (timeout, from coreutils)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "could not start a private PostgreSQL cluster with TLS (initdb and openssl are needed: \
             scripts/test installs them, or apt-get install postgresql openssl):\n{stderr}"
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let fields: Vec<&str> = stdout.split_whitespace().collect();
        let [dir, port, ca, other_ca] = fields[..] else { panic!("unexpected output {stdout:?}, stderr:\n{stderr}") };
        Self { dir: dir.into(), port: port.parse().unwrap(), ca: ca.into(), other_ca: other_ca.into() }
    }

    fn url(&self, params: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?{params}", self.port)
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let stopped = Command::new("bash")
            .args(["-c", r#"source "$0" && private_pg_stop "$1""#])
            .arg(servers_sh())
            .arg(&self.dir)
            .status();
        if !matches!(stopped, Ok(s) if s.success()) || Path::new(&self.dir).exists() {
            eprintln!("could not stop and delete the private cluster in {}", self.dir);
        }
    }
}

async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url))
        .await
        .unwrap_or_else(|_| panic!("connecting to {url} took over {CONNECT_TIMEOUT:?}"))
}

async fn encrypted(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(conn).await.unwrap()
}

fn assert_tls_error(result: Result<PgConnection, sqlx::Error>, what: &str) {
    match result {
        // rustls reports a certificate it does not trust through the socket, as InvalidData.
        Err(sqlx::Error::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData && e.to_string().contains("certificate") =>
        {
            eprintln!("{what}: refused as expected: {e}")
        }
        Err(sqlx::Error::Tls(e)) => eprintln!("{what}: refused as expected: {e}"),
        Err(e) => panic!("{what}: expected the server's certificate to be refused, got {e:?}"),
        Ok(_) => panic!("{what}: connected, but the server's certificate must not be trusted"),
    }
}

#[tokio::test]
async fn postgres_over_tls() {
    let cluster = TlsCluster::start();

    // verify-full: the certificate chains to sslrootcert and names the host (127.0.0.1).
    let verified = cluster.url(&format!("sslmode=verify-full&sslrootcert={}", cluster.ca));
    let mut conn = connect(&verified).await.expect("verify-full with the right CA");
    assert!(encrypted(&mut conn).await, "verify-full connection is not encrypted");
    conn.close().await.unwrap();

    // verify-ca: the chain is checked, the host name is not.
    let mut conn =
        connect(&cluster.url(&format!("sslmode=verify-ca&sslrootcert={}", cluster.ca))).await.expect("verify-ca");
    assert!(encrypted(&mut conn).await);
    conn.close().await.unwrap();

    // require: encrypted, certificate not checked (as libpq without a root certificate).
    let mut conn = connect(&cluster.url("sslmode=require")).await.expect("require");
    assert!(encrypted(&mut conn).await, "sslmode=require connection is not encrypted");
    conn.close().await.unwrap();

    // The store itself (pool, migrations) over verify-full.
    let store = ledger_store::sql::connect(&verified, 2).await.expect("the store connects and migrates over TLS");
    drop(store);

    // A CA that did not sign the server's certificate, or none (not in the OS store): refused.
    assert_tls_error(
        connect(&cluster.url(&format!("sslmode=verify-full&sslrootcert={}", cluster.other_ca))).await,
        "verify-full with the wrong CA",
    );
    assert_tls_error(
        connect(&cluster.url(&format!("sslmode=verify-ca&sslrootcert={}", cluster.other_ca))).await,
        "verify-ca with the wrong CA",
    );
    assert_tls_error(connect(&cluster.url("sslmode=verify-full")).await, "verify-full without sslrootcert");
}
