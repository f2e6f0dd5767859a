//! A transient store fault is nak'ed and retried with backoff (the command then applies
//! once, in order with the later commands of its credit); a fault that outlasts
//! max_deliver ends in a `store-unavailable` rejection instead of endless retries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_store::testing::TestDatabase;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::common::Env;

/// A TCP proxy in front of PostgreSQL that can be "unplugged": while down it cuts every
/// open connection and closes new ones at once, as a database that went away would.
struct Plug {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Plug {
    async fn new(target: String) -> Plug {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let target = target.clone();
                conns2.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Plug { port, up, conns, accept }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Plug {
    fn drop(&mut self) {
        self.accept.abort();
        self.down();
    }
}

fn issue(command_id: Uuid, credit: Uuid) -> String {
    json!({
        "commandId": command_id, "type": "issue", "billingCreditId": credit,
        "creditType": "quantity", "startDate": "2020-01-01", "totalAmount": 10,
        "measurementUnit": {"code": "visit"}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_with_backoff_and_given_up_after_max_deliver() {
    let env = Env::new("faults").await;
    let db = TestDatabase::postgres().await;
    let real = db.store().await;
    // The intake's store reaches the same database through the plug.
    let url = url::rewrite_port(&db.url, 0);
    let plug = Plug::new(format!("127.0.0.1:{}", url.1)).await;
    let through_plug = url::rewrite_port(&db.url, plug.port).0;
    let store = ledger_store::sql::connect(&through_plug, 4).await.expect("store through the plug");
    let mut settings = env.settings();
    settings.publish = false;
    settings.max_deliver = 4;
    settings.nak_delay_base = Duration::from_millis(200);
    let handle = ledger_nats::start(settings, store).await.expect("start");

    let site = Uuid::new_v4();
    let subject = env.command_subject(site);

    // 1. The database goes away; an issue and a use of the same credit arrive.
    plug.down();
    let credit = Uuid::new_v4();
    let (issue_id, use_id) = (Uuid::new_v4(), Uuid::new_v4());
    env.publish_all(vec![
        (subject.clone(), issue(issue_id, credit).into_bytes(), Some(issue_id.to_string())),
        // Pulled in the same batch as the issue: held back with it, never overtaking it.
        (
            subject.clone(),
            json!({"commandId": use_id, "type": "use", "billingCreditId": credit, "amount": 3, "reference": "visit-1"})
                .to_string()
                .into_bytes(),
            Some(use_id.to_string()),
        ),
    ])
    .await;
    // Nak'ed and redelivered (after 200 ms, then 400 ms) while it is down...
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while env.consumer_info().await.num_redelivered < 2 {
        assert!(std::time::Instant::now() < deadline, "no redelivery: {:?}", env.consumer_info().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(real.load(site, credit).await.unwrap().is_none());
    // ...and applied once, in order, when it is back.
    plug.up();
    env.wait_drained(Duration::from_secs(20)).await;
    let c = real.load(site, credit).await.unwrap().expect("issued after the retries");
    assert_eq!((c.version, c.used_amount), (2, 3.into()));
    assert_eq!(env.stream_count(&env.rejection_stream()).await, 0, "a transient fault is not a refusal");

    // 2. Down for longer than max_deliver allows: rejected, not retried forever.
    plug.down();
    let (doomed, doomed_id) = (Uuid::new_v4(), Uuid::new_v4());
    let started = std::time::Instant::now();
    env.publish_all(vec![(subject.clone(), issue(doomed_id, doomed).into_bytes(), Some(doomed_id.to_string()))]).await;
    env.wait_count(&env.rejection_stream(), 1, Duration::from_secs(30)).await;
    // Backoff between the 4 deliveries: 200 + 400 + 800 ms at least.
    assert!(started.elapsed() >= Duration::from_millis(1_400), "{:?}", started.elapsed());
    let rejections = env.read_stream(&env.rejection_stream()).await;
    let r = &rejections[0].2;
    assert_eq!(r["commandId"], json!(doomed_id));
    assert_eq!(r["rule"], json!("store-unavailable"));
    assert_eq!(r["deliveries"], json!(4));
    plug.up();
    let info = env.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(info.num_ack_pending, 0);
    assert!(real.load(site, doomed).await.unwrap().is_none());
    handle.shutdown().await.expect("graceful shutdown");
}

mod url {
    /// The URL with its port replaced, and the port it had (5432 when unspecified).
    pub fn rewrite_port(url: &str, port: u16) -> (String, u16) {
        let host_start = url.find('@').map_or_else(|| url.find("://").unwrap() + 3, |at| at + 1);
        let host_end = url[host_start..].find('/').map_or(url.len(), |i| host_start + i);
        let host = &url[host_start..host_end];
        let (name, old) = match host.rsplit_once(':') {
            Some((name, port)) => (name, port.parse().unwrap()),
            None => (host, 5432),
        };
        (format!("{}{name}:{port}{}", &url[..host_start], &url[host_end..]), old)
    }
}
