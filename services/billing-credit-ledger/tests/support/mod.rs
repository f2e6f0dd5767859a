//! Starting the built binary and talking to it.
#![allow(dead_code)]

pub mod pg_pair;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_billing-credit-ledger");
pub const SECRET: &str = "blackbox-secret-blackbox-secret-0123456789";
pub const SITE: &str = "3f1c2a9e-5b7d-4c1e-9a8b-2d6e4f0a1b3c";

/// Runs `script` with scripts/lib/servers.sh (the private throwaway servers) sourced and
/// `args` as `$1`…, ended by coreutils' `timeout` after `timeout_s`: its stdout, or its
/// stderr when it fails.
pub fn servers(script: &str, args: &[&str], timeout_s: u32) -> Result<String, String> {
    let servers_sh = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/servers.sh");
    let output = Command::new("timeout")
        .args([&timeout_s.to_string(), "bash", "-c", &format!("source \"$0\" || exit 1\n{script}")])
        .arg(servers_sh)
        .args(args)
        .output()
        .expect("run bash (timeout, from coreutils)");
    match output.status.success() {
        true => Ok(String::from_utf8(output.stdout).unwrap()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

/// GET `url` with a bearer token; its JSON body, whatever the status.
pub async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> serde_json::Value {
    client.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

/// A running service; killed (SIGKILL) when dropped.
pub struct Service {
    pub child: Child,
    pub base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    pub fn credits_url(&self) -> String {
        format!("{}/site/{SITE}/ahds/v1/billing-credit", self.base)
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `serve` and waits until /readyz answers 200.
pub async fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Service {
    start_without(database_url, extra_env, &[]).await
}

/// [`start`], without the variables named in `remove_env` (such as `JWT_SECRET`).
pub async fn start_without(database_url: &str, extra_env: &[(&str, &str)], remove_env: &[&str]) -> Service {
    start_logging_to(database_url, extra_env, remove_env, Stdio::inherit()).await
}

/// [`start_without`], its log (stderr) written to `log`.
pub async fn start_logging_to(
    database_url: &str,
    extra_env: &[(&str, &str)],
    remove_env: &[&str],
    log: Stdio,
) -> Service {
    let service = spawn(database_url, extra_env, remove_env, log);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/readyz", service.base)).await {
            if r.status() == 200 {
                return service;
            }
        }
        assert!(Instant::now() < deadline, "the service did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `serve` without waiting for it to be ready.
pub fn spawn(database_url: &str, extra_env: &[(&str, &str)], remove_env: &[&str], log: Stdio) -> Service {
    let port = free_port();
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", SECRET)
        .env("HTTP_WORKERS", "2")
        .env("EXPIRY_SWEEP_INTERVAL_S", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    for (key, value) in extra_env {
        command.env(key, value);
    }
    for key in remove_env {
        command.env_remove(key);
    }
    Service { child: command.spawn().expect("start the binary"), base: format!("http://127.0.0.1:{port}") }
}

/// Mints a token with the `token` command.
pub fn mint_token(scopes: &[&str]) -> String {
    let mut command = Command::new(BIN);
    command.args(["token", "--site", SITE]).env("JWT_SECRET", SECRET).env("DATA_DIR", std::env::temp_dir());
    for scope in scopes {
        command.args(["--scope", scope]);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
