//! The NATS cluster drill (issue 17): the real binary on a private 3-node JetStream
//! cluster (scripts/lib/servers.sh `private_nats_cluster_start`), every stream and the KV
//! bucket with 3 replicas (the event stream is made beforehand with 1, as a single-server
//! deployment left it: the service raises it to 3), its own Postgres database.
//!
//! Under a bounded load of NATS commands (each published with a JetStream ack; the drill
//! records which were acknowledged) and REST writes at the same time, it
//! 1. kills -9 a node that does not lead the command stream, and waits until commands
//!    are applied and events published again;
//! 2. restarts that node and waits until it has caught up: production replaces a dead
//!    node, and a 3-replica stream with two of its three nodes dead has no quorum and
//!    must stop (JetStream refuses writes rather than risk losing them), so the drill
//!    never takes two nodes away at once;
//! 3. kills -9 the node leading the command stream (found with stream info
//!    `cluster.leader`), waits again, and restarts it;
//! 4. kills -9 the node leading the KV bucket (the publisher's lease and checkpoint), and
//!    waits again.
//!
//! Then it checks that every acknowledged command is applied exactly once (by commandId,
//! in SQL), and no command at all more than once; that publication resumed by itself: the
//! event stream, read back, holds every event of the store once (by event id), nothing
//! else; and the same for the balance alerts (each new 1-visit credit raises one) on the
//! alert stream. It prints how long commands stopped being applied and events published after
//! each kill (measured, never asserted). Every wait has a deadline; the servers are
//! killed and their folders deleted at the end, also when the test fails.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use ledger_store::testing::TestDatabase;
use serde_json::json;
use support::*;
use uuid::Uuid;

const COMMAND_STREAM: &str = "BILLING_CREDIT_COMMANDS";
const EVENT_STREAM: &str = "BILLING_CREDIT_EVENTS";
const KV_STREAM: &str = "KV_billing_credit_ledger";
const ALERT_STREAM: &str = "BILLING_CREDIT_ALERTS";
const DRILL_ACTOR: &str = "drill-engine";
/// The load: one NATS command and one REST write per interval, at most this many each.
const LOAD_INTERVAL_MS: u64 = 40;
const LOAD_COMMANDS_MAX: usize = 4_000;
/// A publish not acknowledged within this is recorded as not acknowledged (and may or
/// may not be applied; never twice).
const PUBLISH_ACK_TIMEOUT_MS: u64 = 3_000;
/// Commands applied (and events published) after a kill before the drill moves on.
const PROGRESS_AFTER_KILL: u64 = 50;
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long publication may take to catch up once the load stops, with one node dead.
const PUBLICATION_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Unacknowledged deliveries come back after the consumer's ack wait (30 s).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
const DRILL_TIMEOUT: Duration = Duration::from_secs(420);
const SAMPLE_INTERVAL_MS: u64 = 50;

/// The private cluster; its nodes killed and its folder deleted on drop.
struct Cluster {
    dir: String,
    urls: String,
    names: Vec<String>,
    node_dirs: Vec<String>,
}

impl Cluster {
    fn start() -> Self {
        let script = r#"
            private_nats_cluster_start || exit 1
            printf '%s\n%s\n%s\n%s\n' "$PRIVATE_NATS_CLUSTER_DIR" "$PRIVATE_NATS_CLUSTER_URLS" \
              "$PRIVATE_NATS_CLUSTER_NAMES" "$PRIVATE_NATS_CLUSTER_NODE_DIRS"
        "#;
        let stdout = support::servers(script, &[], 120).unwrap_or_else(|stderr| {
            panic!("could not start a private NATS cluster (nats-server is needed: apt-get install nats-server):\n{stderr}")
        });
        let lines: Vec<&str> = stdout.lines().collect();
        let [dir, urls, names, node_dirs] = lines[..] else { panic!("unexpected output {stdout:?}") };
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        Cluster { dir: dir.into(), urls: urls.into(), names: words(names), node_dirs: words(node_dirs) }
    }

    fn node(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no node {name}"))
    }

    fn pid(&self, node: usize) -> u32 {
        let file = format!("{}/nats.pid", self.node_dirs[node]);
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}")).trim().parse().unwrap()
    }

    fn kill9(&self, node: usize) {
        let pid = self.pid(node);
        let status = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(status.success(), "kill -9 {pid} ({}) failed", self.names[node]);
        eprintln!("drill: killed -9 {} (pid {pid})", self.names[node]);
    }

    fn restart(&self, node: usize) {
        if let Err(stderr) =
            support::servers(r#"private_nats_node_start "$1" >/dev/null"#, &[&self.node_dirs[node]], 60)
        {
            panic!("restarting {} failed:\n{stderr}", self.names[node]);
        }
        eprintln!("drill: restarted {}", self.names[node]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let stopped = support::servers(r#"private_nats_cluster_stop "$1""#, &[&self.dir], 60);
        if stopped.is_err() || Path::new(&self.dir).exists() {
            eprintln!("could not stop and delete the private NATS cluster in {}", self.dir);
        }
    }
}

/// What the load recorded.
#[derive(Default)]
struct Load {
    /// commandId → billingCreditId of every command JetStream acknowledged.
    acked: HashMap<Uuid, Uuid>,
    published: usize,
    /// When each acknowledgement arrived (to measure how long publishing stopped).
    ack_times: Vec<Instant>,
    rest_created: usize,
    rest_failed: usize,
}

/// One observation: commands of the load applied, events on the event stream.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    applied: u64,
    published: u64,
}

async fn stream_info(js: &jetstream::Context, name: &str) -> Option<jetstream::stream::Info> {
    let mut stream = tokio::time::timeout(Duration::from_secs(3), js.get_stream(name)).await.ok()?.ok()?;
    tokio::time::timeout(Duration::from_secs(3), stream.info()).await.ok()?.ok().cloned()
}

/// The node leading a stream now, once there is one.
async fn leader(js: &jetstream::Context, name: &str) -> String {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        if let Some(leader) = stream_info(js, name).await.and_then(|i| i.cluster).and_then(|c| c.leader) {
            return leader;
        }
        assert!(Instant::now() < deadline, "{name} has no leader after {CATCH_UP_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every stream of the ledger has a leader and two current followers.
async fn wait_replicated(js: &jetstream::Context) {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    for name in [COMMAND_STREAM, EVENT_STREAM, KV_STREAM] {
        loop {
            let cluster = stream_info(js, name).await.and_then(|i| i.cluster);
            let current = cluster.as_ref().map_or(0, |c| c.replicas.iter().filter(|p| p.current && !p.offline).count());
            if cluster.as_ref().is_some_and(|c| c.leader.is_some()) && current == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "{name} not fully replicated after {CATCH_UP_TIMEOUT:?}: {cluster:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits until both counters have grown by `by` since `after`.
async fn wait_progress(samples: &Mutex<Vec<Sample>>, after: Sample, by: u64, what: &str) {
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    loop {
        let last = *samples.lock().unwrap().last().unwrap();
        if last.applied >= after.applied + by && last.published >= after.published + by {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no recovery within {PROGRESS_TIMEOUT:?} (applied {} → {}, published {} → {})",
            after.applied,
            last.applied,
            after.published,
            last.published
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One node killed, and when the service was seen working again.
struct Kill {
    what: &'static str,
    node: String,
    /// The streams it led.
    led: Vec<&'static str>,
    at: Instant,
    recovered: Instant,
}

/// Kills -9 `node` and waits until commands are applied and events published again.
async fn kill_and_recover(
    cluster: &Cluster,
    js: &jetstream::Context,
    samples: &Mutex<Vec<Sample>>,
    node: usize,
    what: &'static str,
) -> Kill {
    let mut led = vec![];
    for name in [COMMAND_STREAM, EVENT_STREAM, KV_STREAM] {
        if leader(js, name).await == cluster.names[node] {
            led.push(name);
        }
    }
    let before = *samples.lock().unwrap().last().unwrap();
    let at = Instant::now();
    cluster.kill9(node);
    wait_progress(samples, before, PROGRESS_AFTER_KILL, what).await;
    Kill { what, node: cluster.names[node].clone(), led, at, recovered: Instant::now() }
}

/// The longest time, from `from` until `to`, during which a counter did not move.
fn longest_stall(times: impl Iterator<Item = Instant>, from: Instant, to: Instant) -> Duration {
    let mut previous = from;
    let mut longest = Duration::ZERO;
    for at in times.filter(|t| *t > from && *t <= to).chain(std::iter::once(to)) {
        longest = longest.max(at - previous);
        previous = at;
    }
    longest
}

fn changes(samples: &[Sample], counter: fn(&Sample) -> u64) -> Vec<Instant> {
    samples.windows(2).filter(|w| counter(&w[1]) > counter(&w[0])).map(|w| w[1].at).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_drill() {
    tokio::time::timeout(DRILL_TIMEOUT, drill()).await.expect("the drill took longer than its deadline");
}

async fn drill() {
    let cluster = Cluster::start();
    let db = TestDatabase::postgres().await;
    let addrs: Vec<async_nats::ServerAddr> = cluster.urls.split(',').map(|u| u.parse().unwrap()).collect();
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(2)))
        .reconnect_delay_callback(|_| Duration::from_millis(200))
        .connect(addrs)
        .await
        .expect("connect to the private cluster");
    let js = jetstream::ContextBuilder::new().timeout(Duration::from_millis(PUBLISH_ACK_TIMEOUT_MS)).build(client);
    // An event stream left by a single-server deployment (1 replica): the service must
    // raise it to NATS_STREAM_REPLICAS.
    js.create_stream(jetstream::stream::Config {
        name: EVENT_STREAM.into(),
        subjects: vec!["ahds.billing-credit.events.>".into()],
        num_replicas: 1,
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .expect("create a 1-replica event stream");
    let service = start(
        &db.url,
        &[
            ("NATS_URL", &cluster.urls),
            ("NATS_STREAM_REPLICAS", "3"),
            ("NATS_CONNECT_TIMEOUT_MS", "1000"),
            ("NATS_REQUEST_TIMEOUT_MS", "2000"),
            ("NATS_RECONNECT_DELAY_MAX_MS", "500"),
            ("NATS_PING_INTERVAL_MS", "2000"),
            ("ALERTS_ENABLED", "true"),
            ("ALERT_POLL_INTERVAL_MS", "200"),
        ],
    )
    .await;
    for name in [COMMAND_STREAM, EVENT_STREAM, KV_STREAM, ALERT_STREAM, "BILLING_CREDIT_REJECTIONS"] {
        let info = stream_info(&js, name).await.unwrap_or_else(|| panic!("{name} exists"));
        assert_eq!(info.config.num_replicas, 3, "{name} has the NATS_STREAM_REPLICAS=3 replicas");
    }
    wait_replicated(&js).await;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&db.url).await.unwrap();

    // The load: NATS commands (acknowledged ones recorded) and REST creates, side by side.
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(Load::default()));
    let nats_load = tokio::spawn({
        let (js, stop, load) = (js.clone(), stop.clone(), load.clone());
        async move {
            let subject = format!("ahds.billing-credit.commands.{SITE}");
            let mut tick = tokio::time::interval(Duration::from_millis(LOAD_INTERVAL_MS));
            for _ in 0..LOAD_COMMANDS_MAX {
                tick.tick().await;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let (command_id, credit, member) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
                // 1 visit, at the default low threshold: each raises one `low` alert.
                let body = json!({
                    "commandId": command_id, "type": "issue", "billingCreditId": credit, "actor": DRILL_ACTOR,
                    "wellnessPlanMembershipId": member,
                    "creditType": "quantity", "startDate": "2020-01-01", "totalAmount": 1,
                    "measurementUnit": {"code": "visit", "system": "urn:units"}
                });
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", command_id.to_string().as_str());
                let payload = serde_json::to_vec(&body).unwrap();
                let acked = match js.publish_with_headers(subject.clone(), headers, payload.into()).await {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                let mut load = load.lock().unwrap();
                load.published += 1;
                if acked {
                    load.acked.insert(command_id, credit);
                    load.ack_times.push(Instant::now());
                }
            }
        }
    });
    let rest_load = tokio::spawn({
        let (stop, load, url) = (stop.clone(), load.clone(), service.credits_url());
        let token = mint_token(&["billing-credit:read", "billing-credit:write"]);
        async move {
            let http = reqwest::Client::new();
            let mut tick = tokio::time::interval(Duration::from_millis(LOAD_INTERVAL_MS));
            for _ in 0..LOAD_COMMANDS_MAX {
                tick.tick().await;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let body = json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 1 });
                let sent =
                    http.post(&url).bearer_auth(&token).json(&body).timeout(Duration::from_secs(10)).send().await;
                let mut load = load.lock().unwrap();
                match sent {
                    Ok(r) if r.status() == 201 => load.rest_created += 1,
                    _ => load.rest_failed += 1,
                }
            }
        }
    });
    // What the service achieves: commands of the load applied (SQL), events on the stream.
    let samples = Arc::new(Mutex::new(vec![Sample { at: Instant::now(), applied: 0, published: 0 }]));
    let monitor = tokio::spawn({
        let (js, pool, samples) = (js.clone(), pool.clone(), samples.clone());
        async move {
            loop {
                let last = *samples.lock().unwrap().last().unwrap();
                let applied: Option<i64> = sqlx::query_scalar("SELECT count(*) FROM events WHERE actor = $1")
                    .bind(DRILL_ACTOR)
                    .fetch_one(&pool)
                    .await
                    .ok();
                let published = stream_info(&js, EVENT_STREAM).await.map(|i| i.state.messages);
                samples.lock().unwrap().push(Sample {
                    at: Instant::now(),
                    applied: applied.map_or(last.applied, |n| n as u64),
                    published: published.unwrap_or(last.published),
                });
                tokio::time::sleep(Duration::from_millis(SAMPLE_INTERVAL_MS)).await;
            }
        }
    });
    let now = || *samples.lock().unwrap().last().unwrap();
    wait_progress(&samples, now(), PROGRESS_AFTER_KILL, "warm-up").await;

    let mut kills: Vec<Kill> = vec![];
    // 1. A follower of the command stream dies; then it is replaced, as production would
    //    (with two of three nodes gone, a 3-replica stream has no quorum).
    let leader_name = leader(&js, COMMAND_STREAM).await;
    let follower = (0..3).find(|&n| cluster.names[n] != leader_name).unwrap();
    kills.push(kill_and_recover(&cluster, &js, &samples, follower, "a follower of the command stream").await);
    cluster.restart(follower);
    wait_replicated(&js).await;

    // 2. The command stream's leader dies; replaced.
    let leader_name = leader(&js, COMMAND_STREAM).await;
    let node = cluster.node(&leader_name);
    kills.push(kill_and_recover(&cluster, &js, &samples, node, "the command stream's leader").await);
    assert_ne!(leader(&js, COMMAND_STREAM).await, leader_name, "a new leader took over the command stream");
    cluster.restart(node);
    wait_replicated(&js).await;

    // 3. The KV bucket's leader (the publisher's lease and checkpoint) dies.
    let leader_name = leader(&js, KV_STREAM).await;
    kills.push(kill_and_recover(&cluster, &js, &samples, cluster.node(&leader_name), "the KV bucket's leader").await);
    assert_ne!(leader(&js, KV_STREAM).await, leader_name, "a new leader took over the KV bucket");

    stop.store(true, Ordering::SeqCst);
    nats_load.await.unwrap();
    rest_load.await.unwrap();
    let load = std::mem::take(&mut *load.lock().unwrap());
    eprintln!(
        "drill: {} NATS commands published, {} acknowledged; {} REST creates, {} failed",
        load.published,
        load.acked.len(),
        load.rest_created,
        load.rest_failed
    );
    assert!(load.acked.len() >= 3 * PROGRESS_AFTER_KILL as usize, "the load hardly ran");

    // Every acknowledged command applied exactly once; none applied twice.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let acked: Vec<Uuid> = load.acked.keys().copied().collect();
    loop {
        let applied: i64 =
            sqlx::query_scalar("SELECT count(DISTINCT command_id) FROM events WHERE command_id = ANY($1)")
                .bind(&acked)
                .fetch_one(&pool)
                .await
                .unwrap();
        if applied as usize == acked.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged commands applied after {DRAIN_TIMEOUT:?}",
            applied,
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
        "SELECT command_id, min(billing_credit_id::text)::uuid, count(*) FROM events \
         WHERE actor = $1 GROUP BY command_id",
    )
    .bind(DRILL_ACTOR)
    .fetch_all(&pool)
    .await
    .unwrap();
    for (command_id, credit, count) in &rows {
        assert_eq!(*count, 1, "command {command_id} applied {count} times");
        if let Some(expected) = load.acked.get(command_id) {
            assert_eq!(credit, expected, "command {command_id} applied to the wrong credit");
        }
    }
    eprintln!(
        "drill: {} commands applied once each ({} acknowledged, {} applied though their ack was lost)",
        rows.len(),
        acked.len(),
        rows.len() - acked.len()
    );

    // Publication resumed by itself: the event stream holds every stored event once.
    let stored: HashSet<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM events").fetch_all(&pool).await.unwrap().into_iter().collect();
    let catch_up = Instant::now();
    let deadline = catch_up + PUBLICATION_CATCH_UP_TIMEOUT;
    loop {
        let published = stream_info(&js, EVENT_STREAM).await.map_or(0, |i| i.state.messages);
        assert!(published <= stored.len() as u64, "{published} events published, {} stored", stored.len());
        if published == stored.len() as u64 {
            eprintln!("drill: publication caught up {:?} after the load stopped", catch_up.elapsed());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{published} of {} events published after {PUBLICATION_CATCH_UP_TIMEOUT:?}",
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    monitor.abort();
    let ids = read_msg_ids(&js, EVENT_STREAM).await;
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "the event stream holds {} duplicates", ids.len() - unique.len());
    let missing: Vec<_> = stored.difference(&unique).take(5).collect();
    let unknown: Vec<_> = unique.difference(&stored).take(5).collect();
    assert!(missing.is_empty() && unknown.is_empty(), "published ≠ stored: missing {missing:?}, unknown {unknown:?}");
    eprintln!("drill: {} events stored, the same {} published once each", stored.len(), ids.len());

    // Alert publication resumed by itself too: every alert on the alert stream, once.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let (undelivered, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status <> 'delivered'), count(*) FILTER (WHERE status = 'failed') \
             FROM alert_deliveries WHERE target = 'nats'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(failed, 0, "NATS alert deliveries marked failed");
        if undelivered == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{undelivered} NATS alert deliveries pending after {DRAIN_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alerts: HashSet<Uuid> =
        sqlx::query_scalar("SELECT alert_id FROM alerts").fetch_all(&pool).await.unwrap().into_iter().collect();
    assert!(alerts.len() >= acked.len(), "{} alerts for {} members", alerts.len(), acked.len());
    let published = read_msg_ids(&js, ALERT_STREAM).await;
    let unique: HashSet<Uuid> = published.iter().copied().collect();
    assert_eq!(unique.len(), published.len(), "the alert stream holds duplicates");
    assert_eq!(unique, alerts, "the alert stream and the alerts differ");
    eprintln!("drill: {} alerts raised, the same {} published once each", alerts.len(), published.len());

    // The figures (printed, not asserted: the machine is shared).
    let samples = samples.lock().unwrap().clone();
    for kill in &kills {
        eprintln!(
            "drill: {} ({}, leading {:?}) killed: commands not applied for {} ms, events not published for {} ms, \
             the engine's publishes not acknowledged for {} ms",
            kill.what,
            kill.node,
            kill.led,
            longest_stall(changes(&samples, |s| s.applied).into_iter(), kill.at, kill.recovered).as_millis(),
            longest_stall(changes(&samples, |s| s.published).into_iter(), kill.at, kill.recovered).as_millis(),
            longest_stall(load.ack_times.iter().copied(), kill.at, kill.recovered).as_millis(),
        );
    }
    drop(service);
}

/// The Nats-Msg-Id of every message of a stream, in stream order. A read the cluster
/// answers with "temporarily unavailable" (one node is dead) is tried again, until
/// CATCH_UP_TIMEOUT.
async fn read_msg_ids(js: &jetstream::Context, name: &str) -> Vec<Uuid> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    let stream = js.get_stream(name).await.expect("stream");
    let info = loop {
        match stream_info(js, name).await {
            Some(info) => break info,
            None if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            None => panic!("no info on {name} within {CATCH_UP_TIMEOUT:?}"),
        }
    };
    let mut ids = Vec::with_capacity(info.state.messages as usize);
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        let message = loop {
            match stream.get_raw_message(sequence).await {
                Ok(message) => break message,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("drill: reading message {sequence} of {name} again: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("message {sequence}: {e}"),
            }
        };
        let id = message.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string()).expect("Nats-Msg-Id");
        ids.push(id.parse().expect("an event id"));
    }
    ids
}
