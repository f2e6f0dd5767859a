//! The request loop: C clients, each with one request in flight, until a request count
//! or a duration is used up; progress on stderr while it runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::RequestBuilder;

use crate::stats::Tally;

/// How often a running drive reports its progress on stderr.
const PROGRESS_INTERVAL_MS: u64 = 2_000;

/// When a drive ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this many requests in all (shared by the clients).
    Count(u64),
    /// Once this long has passed; requests in flight then still finish and count.
    After(Duration),
}

/// xorshift64*: a fast, good-enough generator for picking ids; one per client.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Self {
        let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
        Self((hi ^ lo) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in 0..n (n ≥ 1; the modulo bias is negligible for id counts).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Default)]
struct Progress {
    ok: AtomicU64,
    errors: AtomicU64,
}

/// Runs `clients` concurrent loops of `request(rng, index)` (index: 0, 1, 2… across all
/// clients) until `stop`. A 2xx response whose body arrived is a success; anything else
/// an error counted by status ("409") or by kind ("timeout", "transport").
pub async fn drive<F>(label: &str, clients: usize, stop: Stop, request: F) -> (Tally, Duration)
where
    F: Fn(&mut Rng, u64) -> RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let next_index = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let deadline = match stop {
        Stop::After(d) => Some(started + d),
        Stop::Count(_) => None,
    };
    let limit = match stop {
        Stop::Count(n) => n,
        Stop::After(_) => u64::MAX,
    };
    let reporter = tokio::spawn(report_progress(label.to_string(), stop, progress.clone(), started));
    let mut workers = Vec::with_capacity(clients);
    for _ in 0..clients.max(1) {
        let (request, next_index, progress) = (request.clone(), next_index.clone(), progress.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::seeded();
            let mut tally = Tally::default();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let index = next_index.fetch_add(1, Ordering::Relaxed);
                if index >= limit {
                    break;
                }
                let builder = request(&mut rng, index);
                let sent = Instant::now();
                match builder.send().await {
                    Ok(response) => {
                        let status = response.status();
                        // Read the whole body: the connection goes back to the pool only then.
                        let body = response.bytes().await;
                        if status.is_success() && body.is_ok() {
                            tally.ok(sent.elapsed());
                            progress.ok.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        tally.error(if status.is_success() { "body".to_string() } else { status.as_u16().to_string() });
                    }
                    Err(e) => tally.error(if e.is_timeout() { "timeout" } else { "transport" }),
                }
                progress.errors.fetch_add(1, Ordering::Relaxed);
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for worker in workers {
        total.merge(worker.await.expect("a load worker panicked"));
    }
    let elapsed = started.elapsed();
    reporter.abort();
    eprintln!(
        "[loadgen {label}] done in {:.1}s: {} ok, {} errors",
        elapsed.as_secs_f64(),
        total.latencies_us.len(),
        total.error_count()
    );
    (total, elapsed)
}

async fn report_progress(label: String, stop: Stop, progress: Arc<Progress>, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(PROGRESS_INTERVAL_MS));
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        let (ok, errors) = (progress.ok.load(Ordering::Relaxed), progress.errors.load(Ordering::Relaxed));
        let of = match stop {
            Stop::Count(n) => format!("{}/{n} requests", ok + errors),
            Stop::After(d) => format!("{:.0}s/{}s", started.elapsed().as_secs_f64(), d.as_secs()),
        };
        eprintln!("[loadgen {label}] {of}: {ok} ok, {errors} errors");
    }
}
