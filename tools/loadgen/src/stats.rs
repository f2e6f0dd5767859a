//! Latency percentiles and error tallies. Latencies are kept as microseconds and sorted
//! once at the end: a bench run records at most a few million of them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

/// What one worker saw: every successful latency, and its failures by kind.
#[derive(Debug, Default)]
pub struct Tally {
    pub latencies_us: Vec<u64>,
    /// "409", "503", "transport", ... → count.
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    pub fn ok(&mut self, took: Duration) {
        self.latencies_us.push(took.as_micros() as u64);
    }

    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `{count, ok, errors, errors_by_kind, rate_per_s, latency_ms: {...}}` over `elapsed`.
    pub fn summary(mut self, elapsed: Duration) -> Value {
        self.latencies_us.sort_unstable();
        let ok = self.latencies_us.len() as u64;
        let errors = self.error_count();
        json!({
            "count": ok + errors,
            "ok": ok,
            "errors": errors,
            "errors_by_kind": self.errors,
            "elapsed_s": round3(elapsed.as_secs_f64()),
            "rate_per_s": round1(ok as f64 / elapsed.as_secs_f64().max(1e-9)),
            "latency_ms": latency_ms(&self.latencies_us),
        })
    }
}

/// p50/p90/p99/max/mean in milliseconds of sorted microsecond latencies.
pub fn latency_ms(sorted_us: &[u64]) -> Value {
    if sorted_us.is_empty() {
        return Value::Null;
    }
    let mean_us = sorted_us.iter().sum::<u64>() as f64 / sorted_us.len() as f64;
    json!({
        "p50": ms(percentile(sorted_us, 50.0)),
        "p90": ms(percentile(sorted_us, 90.0)),
        "p99": ms(percentile(sorted_us, 99.0)),
        "max": ms(*sorted_us.last().expect("not empty")),
        "mean": round3(mean_us / 1_000.0),
    })
}

/// Nearest-rank percentile of a sorted, non-empty slice.
pub fn percentile(sorted: &[u64], pct: f64) -> u64 {
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(us: u64) -> f64 {
    round3(us as f64 / 1_000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
    }
}
