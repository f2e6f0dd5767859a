//! The auditors' commands: replay, verify, export. Progress goes to stderr, results to stdout.

use anyhow::Context;
use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ledger_http::dto::LedgerEvent;
use ledger_store::{audit, FeedCursor, RecordedWindow, READ_LIMIT_MAX};
use uuid::Uuid;

use crate::cli::{DbArgs, ExportArgs, ReplayArgs};

fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("static template"));
    bar.set_message(format!("{what}: 0 events"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The auditors' tools work on a ledger that exists: opening it never creates a file or
/// database and never migrates, so they run under a role that may only read, and a
/// mistyped path fails instead of auditing an empty database.
async fn open_existing(db: &DbArgs) -> anyhow::Result<std::sync::Arc<dyn ledger_store::EventStore>> {
    ledger_store::sql::open(&db.database_url, db.db_max_connections, ledger_store::sql::Access::Existing)
        .await
        .with_context(|| format!("opening the ledger at {}", crate::serve::redact(&db.database_url)))
}

pub async fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.db).await?;
    let bar = spinner("replay");
    let limits = ledger_store::ReplayLimits { credits_in_memory_max: usize::try_from(args.credits_in_memory_max)? };
    let report =
        audit::replay(store.as_ref(), args.site, limits, &|n| bar.set_message(format!("replay: {n} events"))).await?;
    bar.finish_and_clear();
    let rate = report.events as f64 / report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "replayed {} events into {} credits in {:.2}s ({rate:.0} events/s), {} pass{}",
        report.events,
        report.credits,
        report.elapsed.as_secs_f64(),
        report.passes,
        if report.passes == 1 { "" } else { "es" }
    );
    Ok(())
}

pub async fn verify(db: &DbArgs, site: Option<Uuid>) -> anyhow::Result<()> {
    let store = open_existing(db).await?;
    let bar = spinner("verify");
    let report = audit::verify(store.as_ref(), site, &|n| bar.set_message(format!("verify: {n} events"))).await?;
    bar.finish_and_clear();
    println!("checked {} events of {} credits", report.events, report.credits);
    if report.ok() {
        println!("ok: every hash chain is intact and every projection equals its replay");
        return Ok(());
    }
    for finding in &report.findings {
        println!("MISMATCH {finding}");
    }
    if report.finding_count > report.findings.len() as u64 {
        println!("... and {} more", report.finding_count - report.findings.len() as u64);
    }
    eprintln!("verify failed: {} findings", report.finding_count);
    std::process::exit(1);
}

/// One exported line: the audit view of the event plus its full payload.
#[derive(serde::Serialize)]
struct ExportLine {
    #[serde(flatten)]
    event: LedgerEvent,
    payload: serde_json::Value,
}

/// Writes the site's events recorded within the window (chosen by the database), oldest
/// first. An event that cannot be read is named on stderr and the export ends in an
/// error after writing every other event, so the gap is never silent.
pub async fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.db).await?;
    let bar = spinner("export");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let window = RecordedWindow { from: args.from, to: args.to };
    let (mut cursor, mut written, mut unreadable) = (FeedCursor::START, 0u64, 0u64);
    loop {
        let page = store.feed_window(Some(args.site), window, cursor, READ_LIMIT_MAX).await?;
        if page.events.is_empty() {
            break;
        }
        for stored in &page.events {
            match stored {
                Ok(e) => {
                    let line = ExportLine { event: LedgerEvent::from(e), payload: e.event.payload() };
                    serde_json::to_writer(&mut out, &line)?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
                Err(undecodable) => {
                    bar.suspend(|| eprintln!("UNREADABLE {undecodable}"));
                    unreadable += 1;
                }
            }
        }
        cursor = page.next;
        bar.set_message(format!("export: {written} events"));
    }
    out.flush()?;
    bar.finish_and_clear();
    eprintln!("exported {written} events of site {}", args.site);
    if unreadable > 0 {
        anyhow::bail!("{unreadable} events could not be read and are not in the export (named above)");
    }
    Ok(())
}
