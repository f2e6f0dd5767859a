//! Command intake: a durable pull consumer on `{prefix}.commands.>`, shared by every
//! replica.
//!
//! Each pull takes a bounded batch, and the batch runs as one group: its commands are
//! decided one by one in delivery order, each against the credits as the ones before it
//! left them, and committed in one transaction (`Commands::execute_all`); each keeps its
//! own outcome, ack or rejection, sent after the commit. A consume's credits are read
//! before the group runs, so a consume that follows a create, PUT, PATCH or delete in
//! the batch starts a new group. The next batch is pulled when this one is settled.
//!
//! Every command runs with `command_id = commandId`, so a redelivery (a crash before the
//! ack, a publisher retry, a duplicate publish) replays the first outcome instead of
//! applying it again. Outcomes:
//! - committed (or replayed): ack, only after the commit;
//! - refused (malformed, unknown type, business rule): the reason is published on
//!   `{prefix}.rejections.{siteId}` and the message is terminated, never retried;
//! - refused by the database itself (`StoreError::is_transient` is false: a constraint,
//!   a trigger, a value it cannot store): rejected at once as `store-refused` with the
//!   database's message, as a business rule would be;
//! - a transient fault (store unreachable or busy, deadlock, serialization failure,
//!   concurrent write): nak with a delay that grows with each delivery; the later
//!   commands of the same credit in the batch are not run and are nak'ed too, so that
//!   they keep their order. On the last allowed delivery the command is rejected (`store-unavailable`)
//!   instead, so the engine hears of it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer, AckKind};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ledger_domain::Command;
use ledger_store::{commands, CommandMeta, EventStore, Execution, StoreError};
use serde_json::json;
use tokio::sync::watch;

use crate::command::{self, Action, Identity, ParsedCommand, Refusal};
use crate::streams::ensure_stream;
use crate::NatsSettings;

/// A pause after the intake itself failed (a pull that errored), before pulling again.
pub const PULL_ERROR_PAUSE_MS: u64 = 1_000;

pub(crate) struct Intake {
    js: jetstream::Context,
    consumer: PullConsumer,
    store: Arc<dyn EventStore>,
    settings: Arc<NatsSettings>,
}

/// What became of one message.
enum Outcome {
    Committed { replayed: bool },
    Refused(Refusal),
    Transient(String),
}

impl Intake {
    /// Creates the command and rejection streams and the durable consumer when absent.
    pub(crate) async fn prepare(
        js: &jetstream::Context,
        settings: Arc<NatsSettings>,
        store: Arc<dyn EventStore>,
    ) -> anyhow::Result<Self> {
        let s = &settings;
        let stream = ensure_stream(
            js,
            jetstream::stream::Config {
                name: s.command_stream.clone(),
                description: Some("Commands to the billing-credit ledger (work queue)".into()),
                subjects: vec![s.command_subjects()],
                retention: jetstream::stream::RetentionPolicy::WorkQueue,
                storage: jetstream::stream::StorageType::File,
                num_replicas: s.stream_replicas,
                duplicate_window: s.command_duplicate_window,
                max_age: s.command_max_age,
                max_message_size: command::COMMAND_BYTES_MAX as i32 + 4096,
                ..Default::default()
            },
            "command stream",
        )
        .await?;
        ensure_stream(
            js,
            jetstream::stream::Config {
                name: s.rejection_stream.clone(),
                description: Some("Commands the billing-credit ledger refused, with the reason".into()),
                subjects: vec![format!("{}.rejections.>", s.subject_prefix)],
                storage: jetstream::stream::StorageType::File,
                num_replicas: s.stream_replicas,
                duplicate_window: s.command_duplicate_window,
                max_age: s.rejection_max_age,
                ..Default::default()
            },
            "rejection stream",
        )
        .await?;
        let consumer: PullConsumer = stream
            .get_or_create_consumer(
                &s.consumer,
                jetstream::consumer::pull::Config {
                    durable_name: Some(s.consumer.clone()),
                    description: Some("billing-credit ledger command intake (shared by replicas)".into()),
                    filter_subject: s.command_subjects(),
                    deliver_policy: jetstream::consumer::DeliverPolicy::All,
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: s.ack_wait,
                    max_deliver: s.max_deliver,
                    max_ack_pending: s.max_ack_pending,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("creating the consumer {} on {}: {e}", s.consumer, s.command_stream))?;
        Ok(Intake { js: js.clone(), consumer, store, settings })
    }

    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(stream = %self.settings.command_stream, consumer = %self.settings.consumer, "NATS command intake started");
        while !*stop.borrow() {
            // A pull whose server dies before answering is never answered (and a no-wait
            // fetch has no expiry of its own): bounded here, so a dead node or a consumer
            // leader election cannot stall the intake. Messages delivered to an
            // abandoned pull are redelivered after the ack wait.
            let pull_deadline = self.settings.idle_poll + self.settings.request_timeout;
            let pulled = tokio::time::timeout(pull_deadline, self.next_batch())
                .await
                .unwrap_or_else(|_| Err(format!("no answer to a pull within {} ms", pull_deadline.as_millis()).into()));
            match pulled {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => self.process(messages).await,
                Err(e) => {
                    tracing::warn!(error = %e, "pulling commands failed");
                    let _ = tokio::time::timeout(Duration::from_millis(PULL_ERROR_PAUSE_MS), stop.changed()).await;
                }
            }
        }
        tracing::info!("NATS command intake stopped");
    }

    /// What is waiting now (up to a batch); when nothing is, waits up to `idle_poll` for
    /// the first message, then takes what else is waiting. Every pull is drained to its
    /// end, so no message is left delivered-but-unseen.
    async fn next_batch(&self) -> Result<Vec<jetstream::Message>, async_nats::Error> {
        let max = self.settings.batch_messages;
        let mut messages = drain(self.consumer.fetch().max_messages(max).messages().await?).await?;
        if messages.is_empty() {
            messages =
                drain(self.consumer.batch().max_messages(1).expires(self.settings.idle_poll).messages().await?).await?;
            if !messages.is_empty() && max > 1 {
                messages.extend(drain(self.consumer.fetch().max_messages(max - 1).messages().await?).await?);
            }
        }
        Ok(messages)
    }

    async fn process(&self, messages: Vec<jetstream::Message>) {
        let now = Utc::now();
        let items = messages.into_iter().map(|message| {
            let (identity, parsed) =
                command::parse(&self.settings.subject_prefix, message.subject.as_str(), &message.payload, now);
            Item { message, identity, parsed }
        });
        for segment in segments(items) {
            self.run_segment(segment).await;
        }
    }

    /// Runs a segment's commands in delivery order as shared transactions, then settles
    /// every message (acks only after the commit).
    async fn run_segment(&self, items: Vec<Item>) {
        let prepared = futures::future::join_all(items.iter().map(|item| self.execution(item))).await;
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(items.len());
        let (mut slots, mut executions) = (vec![], vec![]);
        for (i, prepared) in prepared.into_iter().enumerate() {
            match prepared {
                Ok(execution) => {
                    slots.push(i);
                    executions.push(execution);
                    outcomes.push(None);
                }
                Err(outcome) => outcomes.push(Some(outcome)),
            }
        }
        for (i, result) in slots.into_iter().zip(self.store.execute_all(executions).await) {
            outcomes[i] = Some(outcome_of(result.map(|c| c.replayed)));
        }
        let settled = items
            .into_iter()
            .zip(outcomes)
            .map(|(item, outcome)| self.settle(item, outcome.expect("every command has an outcome")));
        futures::future::join_all(settled).await;
    }

    /// The store command a message stands for, or why it has none.
    async fn execution(&self, item: &Item) -> Result<Execution, Outcome> {
        let parsed = item.parsed.as_ref().map_err(|refusal| Outcome::Refused(refusal.clone()))?;
        let occurred_at = parsed.occurred_at.unwrap_or_else(|| stored_at(&item.message).unwrap_or_else(Utc::now));
        let meta = CommandMeta {
            actor: parsed.actor.clone().unwrap_or_else(|| self.settings.default_actor.clone()),
            command_id: Some(parsed.command_id),
            correlation_id: parsed.correlation_id,
            causation_id: parsed.causation_id,
            occurred_at,
        };
        Ok(match &parsed.action {
            Action::OnCredit { billing_credit_id, command } => {
                commands::command_execution(parsed.site_id, *billing_credit_id, command.clone(), meta, None)
            }
            Action::Consume(request) => {
                let ids = commands::consume_candidates(
                    self.store.as_ref(),
                    parsed.site_id,
                    request.wellness_plan_membership_id,
                )
                .await
                .map_err(|e| outcome_of(Err(e)))?;
                commands::consume_execution(parsed.site_id, ids, request.clone(), meta)
            }
        })
    }

    /// Acks, terminates or naks the message.
    async fn settle(&self, item: Item, outcome: Outcome) {
        let Item { message, identity, .. } = item;
        let deliveries = message.info().map(|i| i.delivered).unwrap_or(1).max(1);
        let outcome = match outcome {
            Outcome::Transient(error) if deliveries >= self.settings.max_deliver => {
                tracing::error!(%error, deliveries, command_id = ?identity.command_id, "giving up on a command after its last delivery");
                Outcome::Refused(Refusal::new(
                    "store-unavailable",
                    None,
                    format!("the ledger could not apply the command in {deliveries} attempts: {error}"),
                ))
            }
            other => other,
        };
        match outcome {
            Outcome::Committed { replayed } => {
                metrics::counter!("ledger_nats_commands_total", "outcome" => if replayed { "replayed" } else { "applied" }).increment(1);
                if let Err(e) = message.ack().await {
                    // The command is committed: a redelivery will only replay it.
                    tracing::warn!(error = %e, "ack failed");
                }
            }
            Outcome::Refused(refusal) => {
                match self.publish_rejection(&message, &identity, &refusal, deliveries).await {
                    Ok(()) => {
                        metrics::counter!("ledger_nats_commands_total", "outcome" => "rejected").increment(1);
                        tracing::info!(rule = %refusal.rule, command_id = ?identity.command_id, "command rejected");
                        if let Err(e) = message.ack_with(AckKind::Term).await {
                            tracing::warn!(error = %e, "terminating a rejected command failed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "publishing a rejection failed; the command will be redelivered");
                        nak(&message, self.backoff(deliveries)).await;
                    }
                }
            }
            Outcome::Transient(error) => {
                metrics::counter!("ledger_nats_commands_total", "outcome" => "retried").increment(1);
                let delay = self.backoff(deliveries);
                tracing::warn!(%error, deliveries, delay_ms = delay.as_millis() as u64, "transient fault; nak with backoff");
                nak(&message, delay).await;
            }
        }
    }

    /// base × 2^(deliveries − 1), at most the configured maximum.
    fn backoff(&self, deliveries: i64) -> Duration {
        let exponent = (deliveries.max(1) - 1).min(20) as u32;
        self.settings.nak_delay_base.saturating_mul(1u32 << exponent).min(self.settings.nak_delay_max)
    }

    async fn publish_rejection(
        &self,
        message: &jetstream::Message,
        identity: &Identity,
        refusal: &Refusal,
        deliveries: i64,
    ) -> Result<(), async_nats::Error> {
        let info = message.info().ok();
        let sequence = info.as_ref().map(|i| i.stream_sequence);
        let site_token = identity.site_id.map_or_else(
            || command::site_token(&self.settings.subject_prefix, message.subject.as_str()).to_string(),
            |s| s.to_string(),
        );
        let body = json!({
            "commandId": identity.command_id,
            "siteId": identity.site_id,
            "type": identity.command_type,
            "billingCreditId": identity.billing_credit_id,
            "rule": refusal.rule,
            "field": refusal.field,
            "message": refusal.message,
            "rejectedAt": crate::wire::format_timestamp(&Utc::now()),
            "deliveries": deliveries,
            "commandSequence": sequence,
        });
        // One rejection per command however often it is refused (within the window).
        let msg_id = match identity.command_id {
            Some(id) => format!("rejection:{site_token}:{id}"),
            None => format!("rejection:{}:{}", self.settings.command_stream, sequence.unwrap_or_default()),
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id.as_str());
        let subject = format!("{}.rejections.{site_token}", self.settings.subject_prefix);
        let payload = serde_json::to_vec(&body).expect("rejections serialize");
        self.js.publish_with_headers(subject, headers, payload.into()).await?.await?;
        Ok(())
    }
}

struct Item {
    message: jetstream::Message,
    identity: Identity,
    parsed: Result<ParsedCommand, Refusal>,
}

/// Splits a batch where a consume follows a command that may change which credits a
/// member has (create, PUT, PATCH, delete): a consume's credits are read before its
/// segment runs, and must include what the commands before it made.
fn segments(items: impl Iterator<Item = Item>) -> Vec<Vec<Item>> {
    let mut segments: Vec<Vec<Item>> = vec![vec![]];
    let mut reshaped = false;
    for item in items {
        let action = item.parsed.as_ref().ok().map(|p| &p.action);
        if matches!(action, Some(Action::Consume(_))) && reshaped {
            segments.push(vec![]);
            reshaped = false;
        }
        reshaped |= matches!(
            action,
            Some(Action::OnCredit {
                command: Command::Issue(_) | Command::Replace(_) | Command::Patch(_) | Command::Delete(_),
                ..
            })
        );
        segments.last_mut().expect("a segment").push(item);
    }
    segments.retain(|s| !s.is_empty());
    segments
}

/// How a command's result is answered on NATS.
fn outcome_of(result: Result<bool, StoreError>) -> Outcome {
    match result {
        Ok(replayed) => Outcome::Committed { replayed },
        Err(StoreError::Domain(e)) => Outcome::Refused(Refusal::from(&e)),
        Err(e @ StoreError::Rejected(_)) => Outcome::Refused(Refusal::new("append-rejected", None, e.to_string())),
        Err(e @ StoreError::VersionConflict { .. }) => {
            Outcome::Refused(Refusal::new("version-conflict", None, e.to_string()))
        }
        Err(e) if e.is_transient() => Outcome::Transient(e.to_string()),
        // Refused by the database for what the command holds (a constraint, a trigger, a
        // value it cannot store), or unreadable stored data: the same command fails the
        // same way on every delivery, so it is answered at once instead of holding up
        // its credit's later commands.
        Err(e @ (StoreError::Corrupt(_) | StoreError::Undecodable(_))) => {
            Outcome::Refused(Refusal::new("stored-data-corrupt", None, e.to_string()))
        }
        Err(e) => Outcome::Refused(Refusal::new("store-refused", None, format!("the store refused the command: {e}"))),
    }
}

async fn drain(
    mut batch: async_nats::jetstream::consumer::pull::Batch,
) -> Result<Vec<jetstream::Message>, async_nats::Error> {
    let mut messages = vec![];
    while let Some(next) = batch.next().await {
        match next {
            Ok(message) => messages.push(message),
            // A status the server ends a pull with (409 and the like): keep what came.
            Err(e) if !messages.is_empty() => {
                tracing::debug!(error = %e, "pull ended with a status");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(messages)
}

async fn nak(message: &jetstream::Message, delay: Duration) {
    if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::warn!(error = %e, "nak failed; the message is redelivered after the ack wait");
    }
}

/// When JetStream stored the message: the default business time of a command, the same
/// on every redelivery.
fn stored_at(message: &jetstream::Message) -> Option<DateTime<Utc>> {
    let published = message.info().ok()?.published;
    DateTime::from_timestamp(published.unix_timestamp(), published.nanosecond())
}
