//! ledger-loadgen: drives the billing-credit API over HTTP (keep-alive connections), and
//! queues commands on NATS, for `scripts/bench`. Every subcommand prints one JSON object on stdout and its progress on
//! stderr. Every loop is bounded: by a request count or by a fixed duration.

mod drive;
mod nats;
mod stats;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::{Client, RequestBuilder};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::drive::{drive, Rng, Stop};

/// A request that takes longer than this counts as a "timeout" error.
const REQUEST_TIMEOUT_S: u64 = 30;
/// Seeded credits are valid from this date…
const SEED_START_DATE: &str = "2025-01-01";
/// …until this one, so every bench `use` falls inside their window.
const SEED_END_DATE: &str = "2035-01-01";
/// The unit of seeded credits; consume names it.
const SEED_UNIT_CODE: &str = "visit";

#[derive(Debug, Parser)]
#[command(name = "ledger-loadgen", about = "HTTP load generator for the billing-credit ledger (used by scripts/bench)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create N credits over HTTP, concurrently; write "<credit id> <membership id>" lines to --out.
    Seed(SeedArgs),
    /// C clients POST {id}/use {amount, reference} on random seeded credits for a fixed duration.
    Use(TimedArgs),
    /// C clients POST /consume on random seeded memberships for a fixed duration.
    Consume(TimedArgs),
    /// N sequential requests of one kind (get-one or post-create): latency percentiles.
    Seq(SeqArgs),
    /// N sequential list requests (filters + sort + page) cycling over --query strings.
    List(ListArgs),
    /// Queue N `use` commands on the NATS command stream (JetStream-acknowledged), for the intake bench.
    NatsUse(nats::NatsUseArgs),
}

#[derive(Debug, Clone, Args)]
struct Target {
    /// The service's base URL.
    #[arg(long, env = "LOADGEN_BASE_URL", default_value = "http://127.0.0.1:8083")]
    base_url: String,
    /// The site every request addresses.
    #[arg(long, env = "LOADGEN_SITE")]
    site: Uuid,
    /// Bearer token with billing-credit:read and billing-credit:write for --site.
    #[arg(long, env = "LOADGEN_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Debug, Args)]
struct SeedArgs {
    #[command(flatten)]
    target: Target,
    /// How many credits to create.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// totalAmount of every credit (visits): large enough never to run out during a bench.
    #[arg(long, default_value_t = 1_000_000)]
    total_amount: u64,
    /// Credits that share one wellnessPlanMembershipId.
    #[arg(long, default_value_t = 4)]
    credits_per_membership: u64,
    /// Where to write the ids, one "<credit id> <membership id>" line per credit.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct TimedArgs {
    #[command(flatten)]
    target: Target,
    /// The ids file written by `seed`.
    #[arg(long)]
    ids_file: PathBuf,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Amount spent per request.
    #[arg(long, default_value_t = 1)]
    amount: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SeqKind {
    /// GET /billing-credit/{id} of a random seeded credit.
    GetOne,
    /// POST /billing-credit with a new credit.
    PostCreate,
}

#[derive(Debug, Args)]
struct SeqArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, value_enum)]
    kind: SeqKind,
    /// How many requests, one after the other.
    #[arg(long, default_value_t = 1_000)]
    count: u64,
    /// The ids file written by `seed` (needed by get-one).
    #[arg(long)]
    ids_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    target: Target,
    /// How many requests, one after the other.
    #[arg(long, default_value_t = 1_000)]
    count: u64,
    /// A list query string (without '?'), repeatable; "{page}" becomes a random page in
    /// 0..=--max-page, "{member}" a random membership id of bench/gen_events.sql (below
    /// --members). Requests cycle over the queries.
    #[arg(long = "query", required = true)]
    queries: Vec<String>,
    #[arg(long, default_value_t = 0)]
    max_page: u64,
    /// The resource after `/ahds/v1/`: the credit list, or a member read model.
    #[arg(long, default_value = "billing-credit")]
    resource: String,
    /// How many memberships bench/gen_events.sql made ("{member}" picks one).
    #[arg(long, default_value_t = 1)]
    members: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let report = match Cli::parse().command {
        Cmd::Seed(args) => seed(args).await?,
        Cmd::Use(args) => use_credits(args).await?,
        Cmd::Consume(args) => consume(args).await?,
        Cmd::Seq(args) => seq(args).await?,
        Cmd::List(args) => list(args).await?,
        Cmd::NatsUse(args) => nats::publish_uses(args).await?,
    };
    println!("{report}");
    Ok(())
}

/// The API of one site, with one keep-alive connection pool shared by every client.
#[derive(Clone)]
struct Api {
    http: Client,
    credits_url: String,
    token: String,
}

impl Api {
    fn new(target: &Target, pool_size: usize) -> anyhow::Result<Self> {
        let http = Client::builder()
            .pool_max_idle_per_host(pool_size)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(REQUEST_TIMEOUT_S))
            .build()?;
        let base = target.base_url.trim_end_matches('/');
        Ok(Self {
            http,
            credits_url: format!("{base}/site/{}/ahds/v1/billing-credit", target.site),
            token: target.token.clone(),
        })
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(format!("{}{path}", self.credits_url)).bearer_auth(&self.token)
    }

    fn post(&self, path: &str, body: &Value) -> RequestBuilder {
        // serde_json with arbitrary_precision: serialize here rather than through reqwest's json().
        self.http
            .post(format!("{}{path}", self.credits_url))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
    }
}

fn credit_body(id: Uuid, membership: Uuid, total_amount: u64) -> Value {
    json!({
        "billingCreditId": id,
        "creditType": "quantity",
        "startDate": SEED_START_DATE,
        "endDate": SEED_END_DATE,
        "totalAmount": total_amount,
        "wellnessPlanMembershipId": membership,
        "measurementUnit": { "code": SEED_UNIT_CODE, "system": "urn:heydonto:units", "display": "Visit" },
    })
}

async fn seed(args: SeedArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(args.credits_per_membership >= 1, "--credits-per-membership must be at least 1");
    let api = Api::new(&args.target, args.concurrency)?;
    let memberships: Vec<Uuid> =
        (0..args.count.div_ceil(args.credits_per_membership)).map(|_| Uuid::new_v4()).collect();
    let credits: Arc<Vec<(Uuid, Uuid)>> = Arc::new(
        (0..args.count).map(|i| (Uuid::new_v4(), memberships[(i / args.credits_per_membership) as usize])).collect(),
    );
    let (total, list) = (args.total_amount, credits.clone());
    let (tally, elapsed) = drive("seed", args.concurrency, Stop::Count(args.count), move |_, i| {
        let (id, membership) = list[i as usize];
        api.post("", &credit_body(id, membership, total))
    })
    .await;
    if tally.error_count() > 0 {
        bail!("seeding failed: {} of {} creates were refused: {:?}", tally.error_count(), args.count, tally.errors);
    }
    let lines: String = credits.iter().map(|(id, m)| format!("{id} {m}\n")).collect();
    std::fs::write(&args.out, lines).with_context(|| format!("writing {}", args.out.display()))?;
    Ok(
        json!({ "kind": "seed", "credits": args.count, "memberships": memberships.len(), "concurrency": args.concurrency,
               "result": tally.summary(elapsed) }),
    )
}

/// (credit ids, distinct membership ids) of an ids file written by `seed`.
pub(crate) fn read_ids(path: &Path) -> anyhow::Result<(Vec<Uuid>, Vec<Uuid>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut credits, mut memberships) = (Vec::new(), BTreeSet::new());
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let mut next = |what: &str| -> anyhow::Result<Uuid> {
            let field = fields.next().with_context(|| format!("{}:{}: no {what}", path.display(), n + 1))?;
            Uuid::parse_str(field).with_context(|| format!("{}:{}: {what} {field:?}", path.display(), n + 1))
        };
        credits.push(next("credit id")?);
        memberships.insert(next("membership id")?);
    }
    anyhow::ensure!(!credits.is_empty(), "{} holds no ids", path.display());
    Ok((credits, memberships.into_iter().collect()))
}

async fn use_credits(args: TimedArgs) -> anyhow::Result<Value> {
    let (credits, _) = read_ids(&args.ids_file)?;
    let api = Api::new(&args.target, args.clients)?;
    let amount = args.amount;
    let stop = Stop::After(Duration::from_secs(args.duration_s));
    let (tally, elapsed) = drive(&format!("use c={}", args.clients), args.clients, stop, move |rng: &mut Rng, i| {
        let id = credits[rng.below(credits.len() as u64) as usize];
        api.post(&format!("/{id}/use"), &json!({ "amount": amount, "reference": format!("loadgen-{i}") }))
    })
    .await;
    Ok(
        json!({ "kind": "use", "clients": args.clients, "duration_s": args.duration_s, "result": tally.summary(elapsed) }),
    )
}

async fn consume(args: TimedArgs) -> anyhow::Result<Value> {
    let (_, memberships) = read_ids(&args.ids_file)?;
    let api = Api::new(&args.target, args.clients)?;
    let amount = args.amount;
    let stop = Stop::After(Duration::from_secs(args.duration_s));
    let (tally, elapsed) =
        drive(&format!("consume c={}", args.clients), args.clients, stop, move |rng: &mut Rng, i| {
            let member = memberships[rng.below(memberships.len() as u64) as usize];
            api.post(
                "/consume",
                &json!({ "wellnessPlanMembershipId": member, "amount": amount, "creditType": "quantity",
                     "measurementUnit": SEED_UNIT_CODE, "reference": format!("loadgen-{i}") }),
            )
        })
        .await;
    Ok(
        json!({ "kind": "consume", "clients": args.clients, "duration_s": args.duration_s, "result": tally.summary(elapsed) }),
    )
}

async fn seq(args: SeqArgs) -> anyhow::Result<Value> {
    let api = Api::new(&args.target, 1)?;
    let (tally, elapsed) = match args.kind {
        SeqKind::GetOne => {
            let path = args.ids_file.as_deref().context("get-one needs --ids-file")?;
            let (credits, _) = read_ids(path)?;
            drive("get-one", 1, Stop::Count(args.count), move |rng: &mut Rng, _| {
                api.get(&format!("/{}", credits[rng.below(credits.len() as u64) as usize]))
            })
            .await
        }
        SeqKind::PostCreate => {
            let membership = Uuid::new_v4();
            drive("post-create", 1, Stop::Count(args.count), move |_, _| {
                api.post("", &credit_body(Uuid::new_v4(), membership, 10))
            })
            .await
        }
    };
    let kind = args.kind.to_possible_value().expect("no skipped variants").get_name().to_string();
    Ok(json!({ "kind": kind, "clients": 1, "result": tally.summary(elapsed) }))
}

async fn list(args: ListArgs) -> anyhow::Result<Value> {
    let api = Api::new(&args.target, 1)?;
    let base =
        format!("{}{}", api.credits_url.strip_suffix("billing-credit").expect("the credit list URL"), args.resource);
    let queries = args.queries.clone();
    let (max_page, members) = (args.max_page, args.members.max(1));
    let (tally, elapsed) = drive("list", 1, Stop::Count(args.count), move |rng: &mut Rng, i| {
        let query = queries[i as usize % queries.len()]
            .replace("{page}", &rng.below(max_page + 1).to_string())
            .replace("{member}", &format!("00000000-0000-4000-9000-{:012x}", rng.below(members)));
        api.http.get(format!("{base}?{query}")).bearer_auth(&api.token)
    })
    .await;
    Ok(json!({ "kind": "list", "clients": 1, "resource": args.resource, "queries": args.queries,
               "max_page": args.max_page, "result": tally.summary(elapsed) }))
}
