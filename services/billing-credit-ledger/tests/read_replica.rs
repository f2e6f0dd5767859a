//! Read scaling (issue 17): the binary with DATABASE_READ_URL on a private streaming
//! standby. Reads are served by the standby while it is fresh; with its replay paused,
//! a read without a token is stale only within READ_REPLICA_MAX_LAG_MS, and a client that
//! sends back its write's `Ledger-Position` as `Read-After` reads its own write at once.
//!
//! The standby's replay is paused (`pg_wal_replay_pause()`), so "the replica answered" is
//! seen in the data itself: the primary has the new credit, the paused standby does not.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use ledger_store::testing::TestDatabase;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use support::pg_pair::{PgPair, Replication};
use support::*;

const MAX_LAG_MS: u64 = 5_000;
const PROBE_INTERVAL_MS: u64 = 100;
/// The longest any wait of this test lasts.
const WAIT_DEADLINE: Duration = Duration::from_secs(60);

/// The test's client: one token for reading, writing and auditing.
struct Client {
    http: reqwest::Client,
    token: String,
    base: String,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}/site/{SITE}/ahds/v1/{path}", self.base)
    }

    /// Creates a credit; returns its id and the `Ledger-Position` of the write.
    async fn create(&self, membership: uuid::Uuid) -> (String, String) {
        let body = json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 4,
                           "wellnessPlanMembershipId": membership });
        let created = self.http.post(self.url("billing-credit")).bearer_auth(&self.token).json(&body).send().await;
        let created = created.unwrap();
        assert_eq!(created.status(), 201);
        let position = created.headers().get("Ledger-Position").expect("a write carries Ledger-Position");
        let position = position.to_str().unwrap().to_string();
        let credit: Value = created.json().await.unwrap();
        (credit["billingCreditId"].as_str().unwrap().to_string(), position)
    }

    /// GET `path`: its status and body.
    async fn get(&self, path: &str, read_after: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(self.url(path)).bearer_auth(&self.token);
        if let Some(position) = read_after {
            request = request.header("Read-After", position);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The ids of the site's credits, as one list read sees them.
    async fn listed(&self, read_after: Option<&str>) -> Vec<String> {
        let (status, page) = self.get("billing-credit?pageSize=100", read_after).await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().unwrap().iter().map(|c| c["billingCreditId"].as_str().unwrap().to_string()).collect()
    }

    /// A metric's value as /metrics shows it.
    async fn metric(&self, name: &str) -> String {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        line.and_then(|l| l.rsplit(' ').next()).unwrap_or("absent").to_string()
    }

    /// Reads counted so far with `reason`, from /metrics.
    async fn reads_with_reason(&self, reason: &str) -> u64 {
        self.reads_labelled("reason", reason).await
    }

    /// Reads served so far by `pool` (`replica` or `primary`), from /metrics.
    async fn reads_served_by(&self, pool: &str) -> u64 {
        self.reads_labelled("pool", pool).await
    }

    /// The sum of the `ledger_reads_total` series whose `label` is `value`.
    async fn reads_labelled(&self, label: &str, value: &str) -> u64 {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with("ledger_reads_total{") && l.contains(&format!("{label}=\"{value}\"")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
            .sum()
    }
}

async fn connect(url: &str) -> PgConnection {
    tokio::time::timeout(Duration::from_secs(20), PgConnection::connect(url))
        .await
        .expect("connecting took over 20 s")
        .expect("connect")
}

#[tokio::test]
async fn reads_use_the_standby_within_the_lag_bound_and_writers_read_their_writes() {
    let pair = PgPair::start(Replication::Asynchronous);
    let max_lag = Duration::from_millis(MAX_LAG_MS);
    let service = start(
        &pair.primary_url(),
        &[
            ("DATABASE_READ_URL", &pair.standby_url()),
            ("READ_REPLICA_MAX_LAG_MS", &MAX_LAG_MS.to_string()),
            ("READ_REPLICA_PROBE_INTERVAL_MS", &PROBE_INTERVAL_MS.to_string()),
        ],
    )
    .await;
    let client = Client {
        http: reqwest::Client::new(),
        token: mint_token(&["billing-credit:read", "billing-credit:write", "billing-credit:audit"]),
        base: service.base.clone(),
    };
    let member = uuid::Uuid::new_v4();

    // (a) Fresh: once the standby has the schema and the first credit, reads are served by it.
    let (first, first_position) = client.create(member).await;
    let deadline = Instant::now() + WAIT_DEADLINE;
    loop {
        let before = client.reads_served_by("replica").await;
        let listed = client.listed(Some(&first_position)).await;
        if client.reads_served_by("replica").await > before {
            assert_eq!(listed, std::slice::from_ref(&first), "the replica, fresh, serves the credit written before");
            break;
        }
        assert!(Instant::now() < deadline, "the replica never served a read");
        tokio::time::sleep(Duration::from_millis(PROBE_INTERVAL_MS)).await;
    }

    // Hold the standby behind: its replay stops, the primary goes on.
    let mut standby = connect(&pair.standby_url()).await;
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&mut standby).await.unwrap();
    let deadline = Instant::now() + WAIT_DEADLINE;
    while sqlx::query_scalar::<_, String>("SELECT pg_get_wal_replay_pause_state()")
        .fetch_one(&mut standby)
        .await
        .unwrap()
        != "paused"
    {
        assert!(Instant::now() < deadline, "replay did not pause");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (second, second_position) = client.create(member).await;
    // Every request below that started MAX_LAG_MS after this instant must see `second`.
    let acknowledged = Instant::now();
    let mut primary = connect(&pair.primary_url()).await;
    let on_primary: i64 =
        sqlx::query_scalar("SELECT count(*) FROM billing_credits").fetch_one(&mut primary).await.unwrap();
    assert_eq!(on_primary, 2, "the primary has both credits");

    // Within the bound, a reader without a token may be served by the paused replica:
    // it is, and it has only the first credit (the primary has both).
    let started = Instant::now();
    let listed = client.listed(None).await;
    assert!(
        started < acknowledged + max_lag,
        "this test is too slow to observe the replica (took {:?})",
        started - acknowledged
    );
    assert_eq!(listed, std::slice::from_ref(&first), "served by the paused replica: the new credit is not there yet");

    // (c) The writer sends its token back: its own write, at once, though replay is paused.
    let listed = client.listed(Some(&second_position)).await;
    assert_eq!(listed.len(), 2, "a reader after its write sees it: {listed:?}");
    assert!(listed.contains(&second));
    let (status, history) = client.get(&format!("billing-credit/{second}/events"), Some(&second_position)).await;
    assert_eq!(status, 200, "the new credit's history, read after its write: {history}");
    assert_eq!(history["data"].as_array().unwrap().len(), 1);
    let (status, balance) =
        client.get(&format!("billing-credit-balance?wellnessPlanMembershipId={member}"), Some(&second_position)).await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["data"][0]["remainingAmount"], 8, "both credits in the balance: {balance}");
    // An older token the replica has: the replica serves it (stale as to the second write).
    let replica_before = client.reads_served_by("replica").await;
    assert_eq!(client.listed(Some(&first_position)).await, std::slice::from_ref(&first));
    assert_eq!(client.reads_served_by("replica").await, replica_before + 1);

    // (b), (d) Without a token: stale only until MAX_LAG_MS after the write; past the bound
    // every read goes to the primary and has it.
    let deadline = acknowledged + max_lag + Duration::from_secs(5);
    let mut fresh_reads_past_bound = 0;
    let (mut last_stale, mut first_fresh) = (None, None);
    while fresh_reads_past_bound < 3 {
        let started = Instant::now();
        let listed = client.listed(None).await;
        if !listed.contains(&second) {
            last_stale = Some(started - acknowledged);
            assert!(
                started < acknowledged + max_lag,
                "a read that started {:?} after the write was stale, beyond the {MAX_LAG_MS} ms bound",
                started - acknowledged
            );
        } else {
            first_fresh = first_fresh.or(Some(started - acknowledged));
            if started >= acknowledged + max_lag {
                fresh_reads_past_bound += 1;
            }
        }
        assert!(Instant::now() < deadline, "no read past the bound within 5 s of it");
        tokio::time::sleep(Duration::from_millis(PROBE_INTERVAL_MS)).await;
    }
    eprintln!(
        "replay paused: the last stale read began {last_stale:?} after the write, the first that had it \
         {first_fresh:?} after (bound {MAX_LAG_MS} ms, probe every {PROBE_INTERVAL_MS} ms)"
    );
    let (status, feed) = client.get("billing-credit-events", None).await;
    assert_eq!(status, 200);
    assert_eq!(feed["data"].as_array().unwrap().len(), 2, "the site feed, from the primary, has both events");

    // Replay resumes: the replica catches up and serves again, with both credits.
    sqlx::query("SELECT pg_wal_replay_resume()").execute(&mut standby).await.unwrap();
    let resumed = Instant::now();
    let deadline = resumed + WAIT_DEADLINE;
    loop {
        let before = client.reads_served_by("replica").await;
        let listed = client.listed(None).await;
        if client.reads_served_by("replica").await > before {
            assert_eq!(listed.len(), 2, "the replica, caught up, has both credits");
            eprintln!(
                "replay resumed: the replica served again {:?} later; lag last measured {} s",
                resumed.elapsed(),
                client.metric("ledger_read_replica_lag_seconds").await
            );
            break;
        }
        assert!(Instant::now() < deadline, "the replica did not serve again after catching up");
        tokio::time::sleep(Duration::from_millis(PROBE_INTERVAL_MS)).await;
    }

    // The standby goes away while it is trusted. A second service probes only every 5 s, so
    // its next read still goes to the standby, fails there, and is answered by the primary.
    let slow_probe = start(
        &pair.primary_url(),
        &[
            ("DATABASE_READ_URL", &pair.standby_url()),
            ("READ_REPLICA_MAX_LAG_MS", "30000"),
            ("READ_REPLICA_PROBE_INTERVAL_MS", "5000"),
        ],
    )
    .await;
    let slow = Client { http: reqwest::Client::new(), token: client.token.clone(), base: slow_probe.base.clone() };
    let deadline = Instant::now() + WAIT_DEADLINE;
    while slow.reads_served_by("replica").await == 0 {
        assert_eq!(slow.listed(None).await.len(), 2);
        assert!(Instant::now() < deadline, "the second service never read from the replica");
    }
    drop(standby);
    pair.stop_standby();
    let stopped = Instant::now();
    for service in [&slow, &client] {
        let primary_before = service.reads_served_by("primary").await;
        for _ in 0..5 {
            assert_eq!(service.listed(None).await.len(), 2, "answered by the primary, with both credits");
        }
        assert_eq!(service.reads_served_by("primary").await, primary_before + 5, "the primary answered all five");
    }
    eprintln!("standby stopped: 10 list reads answered by the primary within {:?}", stopped.elapsed());
    assert_eq!(slow.reads_with_reason("replica-failed").await, 1, "tried on the dead standby once, then distrusted");
}

#[tokio::test]
async fn an_unreachable_replica_leaves_every_read_to_the_primary() {
    let db = TestDatabase::postgres().await;
    // Nothing listens there: the service starts, and the primary answers every read.
    let nowhere = format!("postgres://postgres@127.0.0.1:{}/postgres?connect_timeout=1", free_port());
    let service = start(&db.url, &[("DATABASE_READ_URL", &nowhere), ("READ_REPLICA_PROBE_INTERVAL_MS", "50")]).await;
    let client = Client {
        http: reqwest::Client::new(),
        token: mint_token(&["billing-credit:read", "billing-credit:write", "billing-credit:audit"]),
        base: service.base.clone(),
    };
    let (id, position) = client.create(uuid::Uuid::new_v4()).await;
    assert_eq!(client.listed(None).await, std::slice::from_ref(&id));
    assert_eq!(client.listed(Some(&position)).await, [id]);
    assert_eq!(client.reads_served_by("replica").await, 0);
    assert_eq!(client.reads_served_by("primary").await, 2);
    let (status, problem) = client.get("billing-credit", Some("yesterday")).await;
    assert_eq!(status, 400, "a Read-After that is no position: {problem}");
}

#[test]
fn a_read_replica_is_refused_with_sqlite_and_with_a_probe_slower_than_the_bound() {
    let data = std::env::temp_dir().join(format!("read-replica-{}", uuid::Uuid::new_v4()));
    let run = |env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command.arg("serve").env("JWT_SECRET", SECRET).env("LISTEN_ADDR", "127.0.0.1:0").env("DATA_DIR", &data);
        command.env("DATABASE_URL", format!("sqlite://{}/ledger.db", data.display()));
        for (key, value) in env {
            command.env(key, value);
        }
        let out = command.output().unwrap();
        assert!(!out.status.success(), "the service must refuse to start");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let stderr = run(&[("DATABASE_READ_URL", "postgres://postgres@127.0.0.1:1/postgres")]);
    assert!(stderr.contains("a read replica needs PostgreSQL"), "{stderr}");
    let stderr = run(&[
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres"),
        ("DATABASE_READ_URL", "postgres://postgres@127.0.0.1:1/postgres"),
        ("READ_REPLICA_MAX_LAG_MS", "100"),
        ("READ_REPLICA_PROBE_INTERVAL_MS", "100"),
    ]);
    assert!(stderr.contains("must be below its maximum lag"), "{stderr}");
    let _ = std::fs::remove_dir_all(&data);
}
