//! The auditors' tools: rebuild projections from events (replay), and prove that the
//! events are untampered and the projections agree with them (verify). Both read the
//! events in stream order in bounded pages, so memory stays flat whatever the size.

use std::time::Instant;

use ledger_domain::{evolve, Credit};
use uuid::Uuid;

use crate::chain::{self, GENESIS};
use crate::error::StoreError;
use crate::model::*;
use crate::ports::Audit;

/// The most findings `verify` reports; it counts the rest.
pub const FINDINGS_MAX: usize = 100;

/// What is wrong with one event.
pub(crate) enum Flaw {
    /// The event's bytes no longer match its hash; the stream still folds.
    Tampered(String),
    /// The stream cannot be folded past this event (a gap, or a misplaced CreditIssued).
    Broken(String),
}

/// Folds one stream as its events arrive, checking versions and the hash chain.
pub(crate) struct StreamFold {
    pub(crate) key: (Uuid, Uuid),
    pub(crate) credit: Option<Credit>,
    pub(crate) last_hash: [u8; 32],
}

impl StreamFold {
    pub(crate) fn new(key: (Uuid, Uuid)) -> Self {
        Self { key, credit: None, last_hash: GENESIS }
    }

    /// Applies the next event; returns what is wrong with it, if anything.
    pub(crate) fn apply(&mut self, e: &RecordedEvent) -> Option<Flaw> {
        let expected_version = self.credit.as_ref().map_or(1, |c| c.version + 1);
        if e.version != expected_version {
            return Some(Flaw::Broken(format!(
                "event {} is version {} where {expected_version} was expected",
                e.event_id, e.version
            )));
        }
        let recomputed = chain::recompute(&self.last_hash, e);
        let problem = (recomputed != e.hash).then(|| {
            Flaw::Tampered(format!(
                "event {} (credit {} version {}) does not match its hash: it was changed after it was written",
                e.event_id, e.billing_credit_id, e.version
            ))
        });
        let position = e.position_in_stream();
        if let Some(problem) = misplaced(self.credit.as_ref(), &e.event, &position) {
            return Some(Flaw::Broken(problem));
        }
        self.credit = Some(evolve(self.credit.take(), &e.event, &position));
        self.last_hash = e.hash;
        problem
    }
}

/// Why `event` cannot be folded onto `credit`, if it cannot: a stream starts with
/// CreditIssued and holds it nowhere else. Both replays and verify fold through this.
pub(crate) fn misplaced(
    credit: Option<&Credit>,
    event: &ledger_domain::Event,
    at: &ledger_domain::EventPosition,
) -> Option<String> {
    let starts_right = credit.is_some() == !matches!(event, ledger_domain::Event::CreditIssued(_));
    (!starts_right).then(|| format!("event {} ({}) cannot be version {}", at.event_id, event.event_type(), at.version))
}

/// Reads every event (of one site, or all) in stream order, page by page.
struct EventScan<'a> {
    store: &'a dyn Audit,
    site_id: Option<Uuid>,
    after: Option<StreamPosition>,
    done: bool,
}

impl<'a> EventScan<'a> {
    fn new(store: &'a dyn Audit, site_id: Option<Uuid>) -> Self {
        Self { store, site_id, after: None, done: false }
    }

    async fn next_page(&mut self) -> Result<Vec<StoredEvent>, StoreError> {
        if self.done {
            return Ok(vec![]);
        }
        let page = self.store.scan_events(self.site_id, self.after, SCAN_LIMIT_MAX).await?;
        self.done = page.len() < SCAN_LIMIT_MAX as usize;
        if let Some(last) = page.last() {
            self.after = Some(match last {
                Ok(e) => (e.site_id, e.billing_credit_id, e.version),
                Err(u) => (u.site_id, u.billing_credit_id, u.version),
            });
        }
        Ok(page)
    }
}

/// Rebuilds the projection of every credit (of one site, or all) from its events.
/// Safe beside live writers: a rebuilt row never replaces a newer one.
pub async fn replay(
    store: &dyn Audit,
    site_id: Option<Uuid>,
    limits: ReplayLimits,
    progress: Progress<'_>,
) -> Result<ReplayReport, StoreError> {
    if site_id.is_none() {
        if let Some(report) = store.rebuild_projections(limits, progress).await? {
            return Ok(report);
        }
    }
    let started = Instant::now();
    let mut scan = EventScan::new(store, site_id);
    let (mut events, mut credits) = (0u64, 0u64);
    let mut current: Option<StreamFold> = None;
    let mut pending: Vec<(Credit, [u8; 32])> = Vec::with_capacity(PROJECTION_BATCH_MAX);
    let mut page = scan.next_page().await?;
    while !page.is_empty() {
        for e in &page {
            // The credit cannot be rebuilt without it: the operator repairs the row first.
            let e = e.as_ref().map_err(|u| StoreError::Undecodable(Box::new(u.clone())))?;
            let key = (e.site_id, e.billing_credit_id);
            if current.as_ref().is_none_or(|f| f.key != key) {
                if let Some(done) = current.replace(StreamFold::new(key)) {
                    pending.extend(done.credit.map(|c| (c, done.last_hash)));
                    credits += 1;
                }
            }
            let fold = current.as_mut().expect("set above");
            // Replay rebuilds from what is stored; tampering is verify's to report.
            if let Some(Flaw::Broken(problem)) = fold.apply(e) {
                return Err(StoreError::Corrupt(problem));
            }
            events += 1;
        }
        progress(events);
        // Write the finished credits while the next page is read: the two overlap.
        let finished = if pending.len() >= PROJECTION_BATCH_MAX { std::mem::take(&mut pending) } else { Vec::new() };
        let write = async {
            match finished.is_empty() {
                true => Ok(()),
                false => store.put_projections(finished).await,
            }
        };
        let (written, next) = tokio::join!(write, scan.next_page());
        written?;
        page = next?;
    }
    if let Some(done) = current {
        pending.extend(done.credit.map(|c| (c, done.last_hash)));
        credits += 1;
    }
    store.put_projections(pending).await?;
    store.recount(site_id).await?;
    Ok(ReplayReport { events, credits, passes: 1, elapsed: started.elapsed() })
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct VerifyReport {
    pub events: u64,
    pub credits: u64,
    /// What is wrong, in stream order, at most FINDINGS_MAX of them.
    pub findings: Vec<String>,
    /// How many findings there were in all.
    pub finding_count: u64,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.finding_count == 0
    }

    fn found(&mut self, finding: String) {
        self.finding_count += 1;
        if self.findings.len() < FINDINGS_MAX {
            self.findings.push(finding);
        }
    }
}

/// Reads the projection rows in key order, alongside the event scan.
struct ProjectionScan<'a> {
    store: &'a dyn Audit,
    site_id: Option<Uuid>,
    buffer: std::collections::VecDeque<(Credit, [u8; 32])>,
    after: Option<(Uuid, Uuid)>,
    done: bool,
}

impl ProjectionScan<'_> {
    async fn peek_key(&mut self) -> Result<Option<(Uuid, Uuid)>, StoreError> {
        if self.buffer.is_empty() && !self.done {
            let page = self.store.scan_projections(self.site_id, self.after, SCAN_LIMIT_MAX).await?;
            self.done = page.len() < SCAN_LIMIT_MAX as usize;
            if let Some((c, _)) = page.last() {
                self.after = Some((c.site_id, c.billing_credit_id));
            }
            self.buffer.extend(page);
        }
        Ok(self.buffer.front().map(|(c, _)| (c.site_id, c.billing_credit_id)))
    }
}

/// Checks every hash chain and compares every projection row with the replay of its
/// events. Reports the problems found; `ok()` only when there are none.
pub async fn verify(
    store: &dyn Audit,
    site_id: Option<Uuid>,
    progress: Progress<'_>,
) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let mut scan = EventScan::new(store, site_id);
    let mut projections = ProjectionScan { store, site_id, buffer: Default::default(), after: None, done: false };
    let mut current: Option<StreamFold> = None;
    let mut broken_stream = false;
    loop {
        let page = scan.next_page().await?;
        let last_page = page.is_empty();
        for e in &page {
            let key = match e {
                Ok(e) => (e.site_id, e.billing_credit_id),
                Err(u) => (u.site_id, u.billing_credit_id),
            };
            if current.as_ref().is_none_or(|f| f.key != key) {
                if let Some(done) = current.replace(StreamFold::new(key)) {
                    compare(&mut report, &mut projections, done, broken_stream).await?;
                }
                broken_stream = false;
            }
            let fold = current.as_mut().expect("set above");
            let e = match e {
                Ok(e) => e,
                Err(undecodable) => {
                    // Each is named (each needs repairing); nothing after it can be
                    // folded and checked, the fold needs every event.
                    report.found(undecodable.to_string());
                    broken_stream = true;
                    report.events += 1;
                    continue;
                }
            };
            if !broken_stream {
                match fold.apply(e) {
                    Some(Flaw::Tampered(problem)) => report.found(problem),
                    // Later events of a broken stream would only repeat the finding.
                    Some(Flaw::Broken(problem)) => {
                        broken_stream = true;
                        report.found(problem);
                    }
                    None => {}
                }
            }
            report.events += 1;
        }
        progress(report.events);
        if last_page {
            break;
        }
    }
    if let Some(done) = current {
        compare(&mut report, &mut projections, done, broken_stream).await?;
    }
    while let Some(key) = projections.peek_key().await? {
        report.found(format!("credit {} of site {} has a projection row but no events", key.1, key.0));
        projections.buffer.pop_front();
    }
    for mismatch in store.count_mismatches(site_id).await? {
        report.found(mismatch);
    }
    Ok(report)
}

async fn compare(
    report: &mut VerifyReport,
    projections: &mut ProjectionScan<'_>,
    fold: StreamFold,
    broken_stream: bool,
) -> Result<(), StoreError> {
    report.credits += 1;
    while let Some(key) = projections.peek_key().await? {
        if key >= fold.key {
            break;
        }
        report.found(format!("credit {} of site {} has a projection row but no events", key.1, key.0));
        projections.buffer.pop_front();
    }
    match projections.peek_key().await? {
        Some(key) if key == fold.key => {
            let (row, last_hash) = projections.buffer.pop_front().expect("peeked");
            if !broken_stream && (Some(&row) != fold.credit.as_ref() || last_hash != fold.last_hash) {
                report.found(format!(
                    "credit {} of site {}: the projection row differs from the replay of its events",
                    fold.key.1, fold.key.0
                ));
            }
        }
        _ => report.found(format!("credit {} of site {} has events but no projection row", fold.key.1, fold.key.0)),
    }
    Ok(())
}
