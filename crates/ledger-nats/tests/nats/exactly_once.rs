//! 1,000 commands, 10% of them published twice (under another Nats-Msg-Id, so JetStream
//! cannot dedupe them and the ledger's commandId must), and the service killed in the
//! middle (tasks aborted, nothing acked, the lease left held) and started again: every
//! command is applied exactly once, every event is published exactly once, in order.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ledger_store::testing::TestDatabase;
use ledger_store::{command_event_id, FeedCursor};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{check_published, credit_ordered, wait_feed, Env, Rng};

const COMMANDS: usize = 1_000;
const DIRECT_CREDITS: usize = 16;
const MEMBER_CREDITS: usize = 4;
const PHASE_B: usize = 880;

/// What a credit should look like in the end.
#[derive(Debug, Clone, Default, PartialEq)]
struct Expected {
    total: i64,
    used: i64,
    wasted: i64,
    active: bool,
    expired: bool,
    deleted: bool,
    version: u64,
}

struct Cmd {
    id: Uuid,
    body: Value,
}

struct Model {
    site: Uuid,
    credits: Vec<Uuid>,
    members: Vec<Uuid>,
    membership: Uuid,
    expected: HashMap<Uuid, Expected>,
    /// Uses that may still be reversed: (credit, use command, amount).
    uses: Vec<(Uuid, Uuid, i64)>,
}

impl Model {
    fn touch(&mut self, credit: Uuid) -> &mut Expected {
        let e = self.expected.get_mut(&credit).expect("known credit");
        e.version += 1;
        e
    }

    fn issue(&mut self, credit: Uuid, total: i64, end: Option<&str>, membership: Option<Uuid>) -> Cmd {
        let id = Uuid::new_v4();
        self.expected.insert(credit, Expected { total, active: true, version: 1, ..Default::default() });
        let mut body = json!({
            "commandId": id, "type": "issue", "billingCreditId": credit, "actor": "plan-engine",
            "creditType": "quantity", "startDate": "2020-01-01", "totalAmount": total,
            "measurementUnit": {"code": "visit", "system": "urn:units"}
        });
        if let Some(end) = end {
            body["endDate"] = json!(end);
        }
        if let Some(m) = membership {
            body["wellnessPlanMembershipId"] = json!(m);
        }
        Cmd { id, body }
    }

    fn on(&mut self, credit: Uuid, kind: &str, fields: Value) -> Cmd {
        let id = Uuid::new_v4();
        let mut body = json!({"commandId": id, "type": kind, "billingCreditId": credit});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        Cmd { id, body }
    }

    /// Phase B: commands whose outcome does not depend on their order.
    fn commutative(&mut self, rng: &mut Rng) -> Cmd {
        let credit = self.credits[rng.range(0, DIRECT_CREDITS as u64 - 1) as usize];
        match rng.range(0, 9) {
            0..=3 => {
                let amount = rng.range(1, 3) as i64;
                self.touch(credit).used += amount;
                let cmd = self.on(
                    credit,
                    "use",
                    json!({"amount": amount, "reference": format!("visit-{}", rng.next() % 10_000)}),
                );
                self.uses.push((credit, cmd.id, amount));
                cmd
            }
            4 | 5 => {
                let amount = rng.range(1, 2) as i64;
                self.touch(credit).wasted += amount;
                self.on(credit, "waste", json!({"amount": amount, "reason": "missed appointment"}))
            }
            6 => {
                let delta = rng.range(1, 5) as i64;
                self.touch(credit).total += delta;
                self.on(credit, "adjust", json!({"delta": delta, "reason": "plan upgrade"}))
            }
            _ => {
                // One unit from the member's credits: soonest endDate first, so the
                // final spread does not depend on the order either.
                let payer = *self
                    .members
                    .iter()
                    .find(|c| {
                        let e = &self.expected[*c];
                        e.total - e.used - e.wasted > 0
                    })
                    .expect("member credits are large enough");
                self.touch(payer).used += 1;
                let id = Uuid::new_v4();
                Cmd {
                    id,
                    body: json!({
                        "commandId": id, "type": "consume", "wellnessPlanMembershipId": self.membership,
                        "amount": 1, "creditType": "quantity", "measurementUnit": "visit", "reference": "benefit-redemption"
                    }),
                }
            }
        }
    }

    /// Phase C: order matters (one credit's commands run in publication order).
    fn ordered(&mut self, rng: &mut Rng, room: usize) -> Vec<Cmd> {
        let credit = self.credits[rng.range(0, DIRECT_CREDITS as u64 - 3) as usize];
        match rng.range(0, 4) {
            0 | 1 if !self.uses.is_empty() => {
                let (credit, use_id, amount) = self.uses.swap_remove((rng.next() % self.uses.len() as u64) as usize);
                let event_id = command_event_id(use_id, self.site, credit, 0);
                let partial = amount > 1 && rng.range(0, 1) == 0;
                let undone = if partial { 1 } else { amount };
                self.touch(credit).used -= undone;
                let mut fields = json!({"eventId": event_id, "reason": "visit cancelled"});
                if partial {
                    fields["amount"] = json!(1);
                }
                vec![self.on(credit, "reverse", fields)]
            }
            2 if room >= 2 => {
                self.touch(credit).active = false;
                let off = self.on(credit, "deactivate", json!({"reason": "membership paused"}));
                self.touch(credit).active = true;
                let on = self.on(credit, "activate", json!({}));
                vec![off, on]
            }
            _ => {
                let delta = -(rng.range(1, 3) as i64);
                self.touch(credit).total += delta;
                vec![self.on(credit, "adjust", json!({"delta": delta}))]
            }
        }
    }
}

/// The messages of one phase: each command once (Nats-Msg-Id = commandId), and the
/// chosen ones again later in the phase with no Nats-Msg-Id.
fn with_duplicates(
    env: &Env,
    site: Uuid,
    cmds: &[Cmd],
    twice: &HashSet<Uuid>,
    rng: &mut Rng,
) -> Vec<(String, Vec<u8>, Option<String>)> {
    let subject = env.command_subject(site);
    let mut out: Vec<(String, Vec<u8>, Option<String>)> =
        cmds.iter().map(|c| (subject.clone(), c.body.to_string().into_bytes(), Some(c.id.to_string()))).collect();
    for (i, c) in cmds.iter().enumerate() {
        if twice.contains(&c.id) {
            let at = rng.range(i as u64 + 1, out.len() as u64) as usize;
            out.insert(at, (subject.clone(), c.body.to_string().into_bytes(), None));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_applies_once_and_every_event_is_published_once_across_a_crash() {
    let env = Env::new("exactly-once").await;
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let seed = std::env::var("TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand_seed);
    eprintln!("TEST_SEED={seed}");
    let mut rng = Rng::new(seed);

    let site = Uuid::new_v4();
    let mut model = Model {
        site,
        credits: (0..DIRECT_CREDITS).map(|_| Uuid::new_v4()).collect(),
        members: (0..MEMBER_CREDITS).map(|_| Uuid::new_v4()).collect(),
        membership: Uuid::new_v4(),
        expected: HashMap::new(),
        uses: vec![],
    };
    // Phase A: the credits.
    let mut phase_a = vec![];
    for credit in model.credits.clone() {
        phase_a.push(model.issue(credit, 1_000, None, None));
    }
    for (i, credit) in model.members.clone().into_iter().enumerate() {
        phase_a.push(model.issue(credit, 100, Some(&format!("{}-01-01", 2100 + i)), Some(model.membership)));
    }
    // Phase B: uses, wastes, top-ups and consumes, in any order.
    let phase_b: Vec<Cmd> = (0..PHASE_B).map(|_| model.commutative(&mut rng)).collect();
    // Phase C: reversals, pauses, cuts; then two expiries and a deletion.
    let end_ops = 3;
    let mut phase_c = vec![];
    let phase_c_len = COMMANDS - phase_a.len() - phase_b.len();
    while phase_c.len() < phase_c_len - end_ops {
        let room = phase_c_len - end_ops - phase_c.len();
        phase_c.extend(model.ordered(&mut rng, room));
    }
    for credit in [model.credits[DIRECT_CREDITS - 1], model.credits[DIRECT_CREDITS - 2]] {
        let e = model.touch(credit);
        e.wasted = e.total - e.used;
        e.expired = true;
        phase_c.push(model.on(credit, "expire", json!({"reason": "cycle ended"})));
    }
    let deleted = model.credits[0];
    model.touch(deleted).deleted = true;
    phase_c.push(model.on(deleted, "delete", json!({"reason": "issued by mistake"})));
    assert_eq!(phase_a.len() + phase_b.len() + phase_c.len(), COMMANDS);

    // 10% of the commands, published twice.
    let all_ids: Vec<Uuid> = phase_a.iter().chain(&phase_b).chain(&phase_c).map(|c| c.id).collect();
    let mut twice = HashSet::new();
    while twice.len() < COMMANDS / 10 {
        twice.insert(all_ids[(rng.next() % COMMANDS as u64) as usize]);
    }
    let started = Instant::now();

    let mut settings = env.settings();
    settings.batch_messages = 50;
    let first = ledger_nats::start(settings, store.clone()).await.expect("start");
    let messages = with_duplicates(&env, site, &phase_a, &twice, &mut rng);
    let mut published = messages.len();
    env.publish_all(messages).await;
    env.wait_drained(Duration::from_secs(30)).await;

    // Phase B, and a crash half-way through it.
    let messages = with_duplicates(&env, site, &phase_b, &twice, &mut rng);
    published += messages.len();
    let phase_b_messages = messages.len() as u64;
    env.publish_all(messages).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = env.consumer_info().await;
        if info.num_pending < phase_b_messages / 2 {
            break;
        }
        assert!(Instant::now() < deadline, "phase B does not progress: {info:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let was_publishing = first.is_publishing();
    drop(first); // abort: in-flight commands unacked, lease still held, no checkpoint flush
    let info = env.consumer_info().await;
    eprintln!(
        "killed with {} pending and {} unacked; it was publishing: {was_publishing}",
        info.num_pending, info.num_ack_pending
    );
    let second = ledger_nats::start(env.settings(), store.clone()).await.expect("restart");
    env.wait_drained(Duration::from_secs(40)).await;

    let messages = with_duplicates(&env, site, &phase_c, &twice, &mut rng);
    published += messages.len();
    env.publish_all(messages).await;
    let info = env.wait_drained(Duration::from_secs(30)).await;
    assert_eq!(published, COMMANDS + COMMANDS / 10);
    // Deliveries beyond one per message: the commands the crash left unacked.
    eprintln!("{} deliveries of {published} messages", info.delivered.consumer_sequence);
    assert!(info.delivered.consumer_sequence > published as u64, "the crash left commands to redeliver: {info:?}");
    assert_eq!(
        env.stream_count(&env.rejection_stream()).await,
        0,
        "{:#?}",
        env.read_stream(&env.rejection_stream()).await
    );

    // Each command applied exactly once: one event per command, none without one.
    let feed = wait_feed(store.as_ref(), COMMANDS, Duration::from_secs(20)).await;
    assert_eq!(feed.len(), COMMANDS, "one event per command");
    let mut per_command: HashMap<Uuid, usize> = HashMap::new();
    for e in &feed {
        *per_command.entry(e.command_id.expect("every event answers a command")).or_default() += 1;
    }
    for id in &all_ids {
        assert_eq!(per_command.get(id), Some(&1), "command {id}");
    }
    // And the credits are exactly what the model says.
    for (credit, want) in &model.expected {
        let c = store.load(site, *credit).await.unwrap().expect("credit");
        let got = Expected {
            total: i64::try_from(c.total_amount).unwrap(),
            used: i64::try_from(c.used_amount).unwrap(),
            wasted: i64::try_from(c.wasted_amount).unwrap(),
            active: c.is_active,
            expired: c.expired,
            deleted: c.deleted,
            version: c.version,
        };
        assert_eq!(&got, want, "credit {credit}");
        assert!(c.used_amount + c.wasted_amount <= c.total_amount && c.used_amount >= Decimal::ZERO);
    }

    // Each event published exactly once, in feed order, versions 1..n per credit.
    env.wait_count(&env.event_stream(), COMMANDS as u64, Duration::from_secs(30)).await;
    let events = env.read_stream(&env.event_stream()).await;
    let ids = check_published(env.prefix(), &events);
    let (feed_ids, moved) = credit_ordered(&feed);
    assert_eq!(ids, feed_ids, "the stream's order is the feed's (credit order kept)");
    eprintln!("{moved} events published ahead of the feed for their credit's order");

    // A graceful stop stores the checkpoint at the last event.
    second.shutdown().await.expect("graceful shutdown");
    let kv = env.js.get_key_value(env.settings().kv_bucket).await.unwrap();
    let checkpoint: ledger_nats::Checkpoint =
        serde_json::from_slice(&kv.get(ledger_nats::CHECKPOINT_KEY).await.unwrap().expect("checkpoint")).unwrap();
    assert_eq!(FeedCursor::decode(&checkpoint.cursor), Some(feed.last().unwrap().cursor));
    assert_eq!(kv.get(ledger_nats::LEASE_KEY).await.unwrap(), None, "the lease was released");
    eprintln!("done in {:?}", started.elapsed());
}

fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    u64::from(nanos) ^ 0x9E37_79B9_7F4A_7C15
}
