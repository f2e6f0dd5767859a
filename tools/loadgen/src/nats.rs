//! `nats-use`: queues `use` commands on the ledger's JetStream command stream, as the
//! wellness-plan engine would, for the bench's intake phase.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use async_nats::jetstream;
use clap::Args;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::drive::Rng;

/// Publishes awaiting their JetStream acks at once: enough to keep the server busy,
/// few enough to bound memory.
const PUBLISH_ACKS_PENDING_MAX: usize = 1_000;
/// A progress line every this many commands.
const PROGRESS_EVERY_COMMANDS: u64 = 5_000;

#[derive(Debug, Args)]
pub struct NatsUseArgs {
    /// The NATS server whose JetStream holds the ledger's command stream.
    #[arg(long, env = "LOADGEN_NATS_URL")]
    nats_url: String,
    /// The ledger's subject prefix (commands go to `{prefix}.commands.{siteId}`).
    #[arg(long, default_value = "ahds.billing-credit")]
    subject_prefix: String,
    /// The site of the seeded credits.
    #[arg(long, env = "LOADGEN_SITE")]
    site: Uuid,
    /// The ids file written by `seed`.
    #[arg(long)]
    ids_file: PathBuf,
    /// How many commands to queue.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// The actor the commands name, to find their events afterwards.
    #[arg(long, default_value = "nats-bench")]
    actor: String,
}

/// Publishes `count` uses of 1 on random seeded credits, each with its command id as
/// `Nats-Msg-Id`, and returns once JetStream has stored every one.
pub async fn publish_uses(args: NatsUseArgs) -> anyhow::Result<Value> {
    let (credits, _) = crate::read_ids(&args.ids_file)?;
    let client =
        async_nats::connect(&args.nats_url).await.with_context(|| format!("connecting to {}", args.nats_url))?;
    let js = jetstream::new(client);
    let subject = format!("{}.commands.{}", args.subject_prefix, args.site);
    let mut rng = Rng::seeded();
    let started = Instant::now();
    let mut pending = Vec::with_capacity(PUBLISH_ACKS_PENDING_MAX);
    for i in 0..args.count {
        let command_id = Uuid::new_v4();
        let credit = credits[rng.below(credits.len() as u64) as usize];
        let body = json!({
            "commandId": command_id,
            "type": "use",
            "billingCreditId": credit,
            "amount": 1,
            "reference": format!("nats-bench-{i}"),
            "actor": args.actor,
        });
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", command_id.to_string().as_str());
        pending.push(js.publish_with_headers(subject.clone(), headers, body.to_string().into()).await?);
        if pending.len() == PUBLISH_ACKS_PENDING_MAX {
            for ack in pending.drain(..) {
                ack.await.context("JetStream did not store a command")?;
            }
        }
        if (i + 1) % PROGRESS_EVERY_COMMANDS == 0 {
            eprintln!("[loadgen] nats-use: {} of {} queued", i + 1, args.count);
        }
    }
    for ack in pending {
        ack.await.context("JetStream did not store a command")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({ "kind": "nats-use", "published": args.count, "publish_seconds": seconds, "actor": args.actor }))
}
