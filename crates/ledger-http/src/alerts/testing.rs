//! A real HTTP receiver for webhook tests: a TCP listener speaking just enough HTTP/1.1
//! to take a POST, record it, and answer as the test says (a status, or never).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::signature::{verify, SignatureError};

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReceivedWebhook {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn delivery_id(&self) -> Uuid {
        self.header("ledger-delivery-id").and_then(|v| v.parse().ok()).expect("a Ledger-Delivery-Id header")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Checks the signature as a receiver would, with its clock.
    pub fn verify(&self, secret: &str) -> Result<(), SignatureError> {
        let header = self.header("ledger-signature").ok_or(SignatureError::Malformed)?;
        verify(secret, header, self.delivery_id(), &self.body, chrono::Utc::now().timestamp())
    }
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Record the request, then never answer (the connection stays open).
    Hang,
}

pub struct WebhookReceiver {
    pub url: String,
    received: Arc<Mutex<Vec<ReceivedWebhook>>>,
    reply: Arc<Mutex<Reply>>,
    task: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Dropping the receiver closes its port and every connection, as a crash would.
impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
        for connection in self.connections.lock().unwrap().iter() {
            connection.abort();
        }
    }
}

impl WebhookReceiver {
    /// Listens on a free local port, answering 200.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on `port` (0: a free one).
    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the receiver");
        let url = format!("http://127.0.0.1:{}/hooks", listener.local_addr().unwrap().port());
        let received = Arc::new(Mutex::new(vec![]));
        let reply = Arc::new(Mutex::new(Reply::Status(200)));
        let connections = Arc::new(Mutex::new(vec![]));
        let (r, p, c) = (received.clone(), reply.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.lock().unwrap().push(tokio::spawn(serve(stream, r.clone(), p.clone())));
            }
        });
        WebhookReceiver { url, received, reply, task, connections }
    }

    pub fn set_reply(&self, reply: Reply) {
        self.switch_reply(reply);
    }

    /// Sets the reply; returns how many requests arrived before: every later one (from
    /// that index on) gets the new reply.
    pub fn switch_reply(&self, reply: Reply) -> usize {
        let mut current = self.reply.lock().unwrap();
        *current = reply;
        self.received.lock().unwrap().len()
    }

    pub fn received(&self) -> Vec<ReceivedWebhook> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedWebhook> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{} of {n} webhooks arrived within {timeout:?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A free local port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn serve(mut stream: TcpStream, received: Arc<Mutex<Vec<ReceivedWebhook>>>, reply: Arc<Mutex<Reply>>) {
    loop {
        let Some(request) = read_request(&mut stream).await else { return };
        let answer = {
            // Recorded under the reply's lock, so `switch_reply` splits requests exactly.
            let reply = reply.lock().unwrap();
            received.lock().unwrap().push(request);
            *reply
        };
        match answer {
            Reply::Hang => {
                std::future::pending::<()>().await;
            }
            Reply::Status(status) => {
                let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<ReceivedWebhook> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(ReceivedWebhook { path, headers, body: buf[head_end..head_end + length].to_vec() })
}
