//! How far behind the primary a standby is, in time, without comparing clocks.
//!
//! The probe notes the primary's WAL insert position with the instant it asked for it.
//! Every commit acknowledged before that instant lies below that position, so a standby
//! that has replayed up to it holds everything committed before the instant: it is fresh
//! *as of* the newest such sample. The verdict is "fresh until" that instant plus the
//! allowed lag, an absolute deadline: a probe that stalls cannot stretch it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Samples kept at most; a standby further behind than the oldest counts as stale.
pub(super) const SAMPLES_MAX: usize = 4_096;

/// A WAL position, as `pg_lsn` text (`16/B374D848`) reads.
pub(super) fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// The primary's WAL positions and when they were read, oldest first.
#[derive(Debug, Default)]
pub(super) struct Samples {
    taken: VecDeque<(u64, Instant)>,
}

impl Samples {
    pub(super) fn push(&mut self, lsn: u64, at: Instant) {
        if self.taken.len() == SAMPLES_MAX {
            self.taken.pop_front();
        }
        self.taken.push_back((lsn, at));
    }

    /// The instant a standby that replayed up to `replayed` is fresh as of: that of the
    /// newest sample at or below it. The samples before that one can never answer again
    /// (replay only moves forward) and are dropped.
    pub(super) fn fresh_as_of(&mut self, replayed: u64) -> Option<Instant> {
        let newest = self.taken.iter().rposition(|(lsn, _)| *lsn <= replayed)?;
        self.taken.drain(..newest);
        self.taken.front().map(|(_, at)| *at)
    }
}

/// The probe's verdict, shared with every request: the replica may serve reads until
/// an instant (none: not at all).
#[derive(Debug)]
pub(super) struct Freshness {
    base: Instant,
    /// Microseconds after `base`; 0 means not fresh.
    fresh_until_us: AtomicU64,
    /// The lag last measured, for the metric and the logs.
    lag_ms: AtomicU64,
}

impl Freshness {
    pub(super) fn new() -> Self {
        Self { base: Instant::now(), fresh_until_us: AtomicU64::new(0), lag_ms: AtomicU64::new(u64::MAX) }
    }

    /// The replica holds everything committed before `as_of`: it may serve until
    /// `as_of + max_lag`.
    pub(super) fn fresh_as_of(&self, as_of: Instant, max_lag: Duration, now: Instant) {
        let until = (as_of + max_lag).saturating_duration_since(self.base).as_micros().max(1);
        self.fresh_until_us.store(u64::try_from(until).unwrap_or(u64::MAX), Ordering::Release);
        let lag = now.saturating_duration_since(as_of).as_millis();
        self.lag_ms.store(u64::try_from(lag).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Unreachable, not a standby, or too far behind to measure: serves nothing.
    pub(super) fn unusable(&self) {
        self.fresh_until_us.store(0, Ordering::Release);
    }

    pub(super) fn is_fresh(&self, now: Instant) -> bool {
        let until = self.fresh_until_us.load(Ordering::Acquire);
        until > 0 && (now.saturating_duration_since(self.base).as_micros() as u64) < until
    }

    pub(super) fn lag_ms(&self) -> Option<u64> {
        Some(self.lag_ms.load(Ordering::Relaxed)).filter(|lag| *lag != u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_reads_as_a_number() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn("16-B374D848"), None);
        assert_eq!(parse_lsn("x/1"), None);
    }

    #[test]
    fn fresh_as_of_the_newest_sample_replayed() {
        let t0 = Instant::now();
        let mut samples = Samples::default();
        for (i, lsn) in [100, 200, 300].into_iter().enumerate() {
            samples.push(lsn, t0 + Duration::from_millis(i as u64 * 10));
        }
        assert_eq!(samples.fresh_as_of(99), None, "behind every sample: no verdict");
        assert_eq!(samples.fresh_as_of(250), Some(t0 + Duration::from_millis(10)));
        assert_eq!(samples.fresh_as_of(300), Some(t0 + Duration::from_millis(20)));
        // An idle primary: its position stands still, the newest sample answers.
        samples.push(300, t0 + Duration::from_millis(30));
        assert_eq!(samples.fresh_as_of(300), Some(t0 + Duration::from_millis(30)));
    }

    #[test]
    fn samples_are_bounded() {
        let t0 = Instant::now();
        let mut samples = Samples::default();
        for i in 0..(SAMPLES_MAX as u64 + 10) {
            samples.push(i, t0);
        }
        assert_eq!(samples.taken.len(), SAMPLES_MAX);
        assert_eq!(samples.fresh_as_of(5), None, "the oldest samples were dropped");
    }

    #[test]
    fn the_verdict_expires_by_itself() {
        let freshness = Freshness::new();
        let t0 = Instant::now();
        assert!(!freshness.is_fresh(t0), "not measured yet");
        freshness.fresh_as_of(t0, Duration::from_millis(100), t0);
        assert!(freshness.is_fresh(t0 + Duration::from_millis(99)));
        assert!(!freshness.is_fresh(t0 + Duration::from_millis(100)));
        freshness.fresh_as_of(t0, Duration::from_millis(100), t0);
        freshness.unusable();
        assert!(!freshness.is_fresh(t0));
    }
}
