//! The alerter, the expiry scan and the sites' alert settings, on any dialect (see
//! [`crate::alerts`] for what they do and why). The outbox they write is read and
//! worked in [`super::outbox`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use ledger_domain::{balance, BalanceFilter, Credit, CreditDetails, CreditType, Event};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::build::Sql;
use super::db::SqlDb;
use super::dialect::{Conn, DbRow, Dialect};
use super::rows;
use super::store::SqlStore;
use crate::alerts::*;
use crate::balance::MEMBER_CREDITS_MAX;
use crate::error::StoreError;
use crate::model::{FeedCursor, StoredEvent};
use crate::ports::Alerts;

/// Members whose credits (or alert state) one statement reads.
const MEMBERS_PER_STATEMENT_MAX: usize = 500;

pub(super) fn sqlx_err(e: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(e)
}

fn credit_type(text: &str) -> Result<CreditType, StoreError> {
    match text {
        "quantity" => Ok(CreditType::Quantity),
        "monetary" => Ok(CreditType::Monetary),
        other => Err(StoreError::Corrupt(format!("credit type {other:?}"))),
    }
}

pub(super) fn kind(text: &str) -> Result<AlertKind, StoreError> {
    AlertKind::parse(text).ok_or_else(|| StoreError::Corrupt(format!("alert kind {text:?}")))
}

fn settings_from_row<D: Dialect>(row: &DbRow<D>) -> Result<AlertSettings, StoreError> {
    let decimal = |text: &str| text.parse::<Decimal>().map_err(|e| StoreError::Corrupt(format!("threshold: {e}")));
    let per_unit: BTreeMap<String, String> = serde_json::from_str(&D::Db::text(row, "low_thresholds")?)
        .map_err(|e| StoreError::Corrupt(format!("low_thresholds: {e}")))?;
    Ok(AlertSettings {
        default_low_threshold: D::Db::opt_text(row, "default_low_threshold")?.as_deref().map(decimal).transpose()?,
        low_thresholds: per_unit
            .iter()
            .map(|(unit, t)| Ok((unit.clone(), decimal(t)?)))
            .collect::<Result<_, StoreError>>()?,
        expiring_within_days: D::Db::opt_i64(row, "expiring_within_days")?
            .map(|d| d.clamp(0, i64::from(u32::MAX)) as u32),
    })
}

/// A member an alerter step evaluates.
struct MemberTouch {
    /// (position in the page, event id) of the member's latest event.
    latest: (usize, Uuid),
    /// Lines a credit of the member has just left.
    left: Vec<LineKey>,
}

/// Adds an event of `member` (and the line it left, if any) to those a step evaluates.
fn touch(
    members: &mut BTreeMap<(Uuid, Uuid), MemberTouch>,
    member: (Uuid, Uuid),
    latest: (usize, Uuid),
    left: Option<LineKey>,
) {
    let entry = members.entry(member).or_insert(MemberTouch { latest, left: vec![] });
    entry.latest = entry.latest.max(latest);
    entry.left.extend(left);
}

/// What one alerter step will write: the transitions of the members the events after
/// `after` touched, and where the checkpoint goes (None: no new event).
struct StepPlan {
    after: FeedCursor,
    next: Option<FeedCursor>,
    events: usize,
    /// (site, member, the member's latest event in the page, transition).
    transitions: Vec<(Uuid, Uuid, Uuid, Transition)>,
}

impl<D: Dialect> SqlStore<D> {
    /// Reads what a step needs, writing nothing. None when the alerter has never run
    /// (there is no checkpoint).
    async fn plan_step(
        conn: &mut Conn<D>,
        policy: &AlertPolicy,
        now: DateTime<Utc>,
        batch: u32,
    ) -> Result<Option<StepPlan>, StoreError> {
        let Some(after) = checkpoint_in::<D>(conn).await? else { return Ok(None) };
        let mut q = Sql::<D>::new(format!("SELECT {} FROM events WHERE ", D::EVENT_COLUMNS));
        q.pieces(D::feed_after(after)).push(" LIMIT ").i64(i64::from(batch));
        let events = rows::stored_events::<D>(&q.fetch_all(conn).await.map_err(sqlx_err)?)?;
        let next = events.last().map(|last| last.as_ref().map_or_else(|u| u.cursor, |e| e.cursor));

        let members = Self::members_touched(conn, &events).await?;
        let keys: Vec<(Uuid, Uuid)> = members.keys().copied().collect();
        let mut credits_of = Self::members_credits(conn, &keys).await?;
        let mut past_of = Self::members_alert_state(conn, &keys).await?;
        let mut site_settings: BTreeMap<Uuid, AlertSettings> = BTreeMap::new();
        let mut transitions = vec![];
        for ((site_id, member), touch) in members {
            if let std::collections::btree_map::Entry::Vacant(entry) = site_settings.entry(site_id) {
                entry.insert(Self::settings_in(conn, site_id).await?.unwrap_or_default());
            }
            let settings = &site_settings[&site_id];
            let Some(credits) = credits_of.remove(&(site_id, member)).unwrap_or(Some(vec![])) else {
                // The balance read model refuses such a member too: a partial sum would be wrong.
                tracing::warn!(%site_id, %member, "member has more than {MEMBER_CREDITS_MAX} credits: no balance alerts");
                continue;
            };
            let lines = balance(&credits, &BalanceFilter::default(), now, Duration::zero());
            let past = past_of.remove(&(site_id, member)).unwrap_or_default();
            let (_, event_id) = touch.latest;
            for transition in
                crate::alerts::transitions(&lines, &past, &touch.left, |unit| settings.low_threshold(unit, policy))
            {
                transitions.push((site_id, member, event_id, transition));
            }
        }
        Ok(Some(StepPlan { after, next, events: events.len(), transitions }))
    }

    /// The live credits of each member (site, member), a statement per chunk of
    /// members; None for a member with more than MEMBER_CREDITS_MAX of them. A chunk
    /// whose rows reach the statement's bound is read again member by member, so one
    /// member with very many credits neither hides another's nor fills memory.
    async fn members_credits(
        conn: &mut Conn<D>,
        members: &[(Uuid, Uuid)],
    ) -> Result<BTreeMap<(Uuid, Uuid), Option<Vec<Credit>>>, StoreError> {
        let mut found: BTreeMap<(Uuid, Uuid), Option<Vec<Credit>>> = BTreeMap::new();
        for chunk in members.chunks(super::store::rows_per_statement::<D>(2).min(MEMBERS_PER_STATEMENT_MAX)) {
            let rows_max = chunk.len() * (MEMBER_CREDITS_MAX + 1);
            let mut q = Sql::<D>::new(format!(
                "SELECT {}, site_id, billing_credit_id FROM billing_credits WHERE NOT deleted AND ",
                D::STATE_COLUMN
            ));
            q.pairs(("site_id", "wellness_plan_membership_id"), chunk).push(" LIMIT ").i64(rows_max as i64);
            let rows = q.fetch_all(conn).await.map_err(sqlx_err)?;
            if rows.len() < rows_max {
                let mut grouped: BTreeMap<(Uuid, Uuid), Vec<Credit>> = BTreeMap::new();
                for row in &rows {
                    let credit = rows::listed_state::<D>(row, None)?;
                    let Some(member) = credit.details.wellness_plan_membership_id else { continue };
                    grouped.entry((credit.site_id, member)).or_default().push(credit);
                }
                found.extend(
                    grouped
                        .into_iter()
                        .map(|(k, credits)| (k, (credits.len() <= MEMBER_CREDITS_MAX).then_some(credits))),
                );
                continue;
            }
            for &(site_id, member) in chunk {
                let credits = Self::membership_credits_in(conn, site_id, member, MEMBER_CREDITS_MAX as u32 + 1).await?;
                let credits = (credits.len() <= MEMBER_CREDITS_MAX).then_some(credits);
                found.insert((site_id, member), credits);
            }
        }
        Ok(found)
    }

    /// Which lines of each member (site, member) are past a threshold now, as the
    /// alerter last left them.
    async fn members_alert_state(
        conn: &mut Conn<D>,
        members: &[(Uuid, Uuid)],
    ) -> Result<BTreeMap<(Uuid, Uuid), Vec<(LineKey, AlertKind)>>, StoreError> {
        let mut past: BTreeMap<(Uuid, Uuid), Vec<(LineKey, AlertKind)>> = BTreeMap::new();
        for chunk in members.chunks(super::store::rows_per_statement::<D>(2).min(MEMBERS_PER_STATEMENT_MAX)) {
            let mut q = Sql::<D>::new(
                "SELECT site_id, wellness_plan_membership_id, credit_type, unit_code, kind FROM alert_state WHERE ",
            );
            q.pairs(("site_id", "wellness_plan_membership_id"), chunk);
            for r in q.fetch_all(conn).await.map_err(sqlx_err)? {
                let member = (D::Db::uuid(&r, "site_id")?, D::Db::uuid(&r, "wellness_plan_membership_id")?);
                let key = (credit_type(&D::Db::text(&r, "credit_type")?)?, D::Db::text(&r, "unit_code")?);
                past.entry(member).or_default().push((key, kind(&D::Db::text(&r, "kind")?)?));
            }
        }
        Ok(past)
    }

    /// The members whose balance the page's events may have moved, by (site, member).
    async fn members_touched(
        conn: &mut Conn<D>,
        events: &[StoredEvent],
    ) -> Result<BTreeMap<(Uuid, Uuid), MemberTouch>, StoreError> {
        // The credits touched, each with the last event that touched it (an event that
        // cannot be read back still names its credit).
        let mut touched: BTreeMap<(Uuid, Uuid), (usize, Uuid)> = BTreeMap::new();
        for (at, event) in events.iter().enumerate() {
            let (site, credit, id) = match event {
                Ok(e) => (e.site_id, e.billing_credit_id, e.event_id),
                Err(u) => (u.site_id, u.billing_credit_id, u.event_id),
            };
            touched.insert((site, credit), (at, id));
        }
        // Their credits as they stand (deleted ones too: a deletion lowers the balance).
        let pairs: Vec<(Uuid, Uuid)> = touched.keys().copied().collect();
        let mut credits: BTreeMap<(Uuid, Uuid), Credit> = BTreeMap::new();
        for chunk in pairs.chunks(super::store::rows_per_statement::<D>(2).min(500)) {
            let mut q = Sql::<D>::new(format!(
                "SELECT {}, site_id, billing_credit_id FROM billing_credits WHERE ",
                D::STATE_COLUMN
            ));
            q.pairs(("site_id", "billing_credit_id"), chunk);
            for row in q.fetch_all(conn).await.map_err(sqlx_err)? {
                let credit = rows::listed_state::<D>(&row, None)?;
                credits.insert((credit.site_id, credit.billing_credit_id), credit);
            }
        }
        // The members to evaluate, each with its latest event in feed order (it names
        // the crossing) and the lines a credit of theirs has just left.
        let mut members: BTreeMap<(Uuid, Uuid), MemberTouch> = BTreeMap::new();
        for (key, credit) in &credits {
            if let Some(member) = credit.details.wellness_plan_membership_id {
                touch(&mut members, (key.0, member), touched[key], None);
            }
        }
        for (at, event) in events.iter().enumerate() {
            let Ok(e) = event else { continue };
            let latest = (at, e.event_id);
            match &e.event {
                Event::CreditExpired(_) | Event::CreditDeleted(_) | Event::CreditDeactivated(_) => {
                    let Some(credit) = credits.get(&(e.site_id, e.billing_credit_id)) else { continue };
                    if let Some(member) = credit.details.wellness_plan_membership_id {
                        touch(&mut members, (e.site_id, member), latest, Some(line_key(&credit.details)));
                    }
                }
                // A credit moved to another member or unit left its former line.
                Event::CreditDetailsChanged(changed) => {
                    let former = Self::former_details(conn, e.site_id, e.billing_credit_id, e.version).await?;
                    let Some(former) = former else { continue };
                    let moved = former.wellness_plan_membership_id != changed.details.wellness_plan_membership_id
                        || line_key(&former) != line_key(&changed.details);
                    if let Some(member) = former.wellness_plan_membership_id.filter(|_| moved) {
                        touch(&mut members, (e.site_id, member), latest, Some(line_key(&former)));
                    }
                }
                _ => {}
            }
        }
        Ok(members)
    }

    /// A credit's details before its version `version`: those of its latest earlier
    /// issue or details change.
    async fn former_details(
        conn: &mut Conn<D>,
        site_id: Uuid,
        billing_credit_id: Uuid,
        version: u64,
    ) -> Result<Option<CreditDetails>, StoreError> {
        let mut q = Sql::<D>::new(format!("SELECT {} FROM events WHERE site_id = ", D::EVENT_COLUMNS));
        q.uuid(site_id).push(" AND billing_credit_id = ").uuid(billing_credit_id);
        q.push(" AND version < ").i64(version as i64).push(" AND event_type IN (");
        q.text("CreditIssued").push(", ").text("CreditDetailsChanged").push(") ORDER BY version DESC LIMIT 1");
        let rows = q.fetch_all(conn).await.map_err(sqlx_err)?;
        let Some(Ok(previous)) = rows::stored_events::<D>(&rows)?.into_iter().next() else { return Ok(None) };
        Ok(match previous.event {
            Event::CreditIssued(issued) => Some(issued.details),
            Event::CreditDetailsChanged(changed) => Some(changed.details),
            _ => None,
        })
    }

    async fn settings_in(conn: &mut Conn<D>, site_id: Uuid) -> Result<Option<AlertSettings>, StoreError> {
        let mut q = Sql::<D>::new(
            "SELECT default_low_threshold, low_thresholds, expiring_within_days FROM alert_settings WHERE site_id = ",
        );
        q.uuid(site_id);
        q.fetch_optional(conn).await.map_err(sqlx_err)?.as_ref().map(settings_from_row::<D>).transpose()
    }

    /// Writes the alert once (its id is deterministic) and, if it is new, one delivery
    /// per live endpoint of its site and one for NATS when configured.
    async fn write_alert(
        conn: &mut Conn<D>,
        alert: &Alert,
        policy: &AlertPolicy,
        endpoints: &[Uuid],
    ) -> Result<bool, StoreError> {
        let mut q = Sql::<D>::new(
            "INSERT INTO alerts (alert_id, site_id, kind, billing_credit_id, end_date, payload, created_at)",
        );
        q.values([alert], |q, a| {
            q.uuid(a.alert_id)
                .uuid(a.site_id)
                .text(a.kind.as_str())
                .opt_uuid(a.credit_end.map(|(c, _)| c))
                .opt_time(a.credit_end.map(|(_, e)| e))
                .text(a.payload.to_string())
                .time(a.created_at);
        });
        q.push(" ON CONFLICT (alert_id) DO NOTHING");
        if q.execute(conn).await.map_err(sqlx_err)? == 0 {
            return Ok(false);
        }
        let mut targets: Vec<(TargetKind, Option<Uuid>)> =
            endpoints.iter().map(|e| (TargetKind::Webhook, Some(*e))).collect();
        if policy.nats {
            targets.push((TargetKind::Nats, None));
        }
        if targets.is_empty() {
            return Ok(true);
        }
        let give_up_at = alert.created_at + policy.retry_horizon;
        let mut q = Sql::<D>::new(
            "INSERT INTO alert_deliveries (delivery_id, alert_id, site_id, kind, target, endpoint_id, status, \
             attempts, next_attempt_at, give_up_at, created_at)",
        );
        q.values(targets, |q, (target, endpoint_id)| {
            q.uuid(Uuid::new_v4())
                .uuid(alert.alert_id)
                .uuid(alert.site_id)
                .text(alert.kind.as_str())
                .text(target.as_str())
                .opt_uuid(endpoint_id)
                .text(DeliveryStatus::Pending.as_str())
                .i64(0)
                .time(alert.created_at)
                .time(give_up_at)
                .time(alert.created_at);
        });
        q.execute(conn).await.map_err(sqlx_err)?;
        Ok(true)
    }

    async fn live_endpoints(conn: &mut Conn<D>, site_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let mut q = Sql::<D>::new("SELECT endpoint_id FROM webhook_endpoints WHERE NOT deleted AND site_id = ");
        q.uuid(site_id).push(" ORDER BY created_at, endpoint_id");
        let rows = q.fetch_all(conn).await.map_err(sqlx_err)?;
        rows.iter().map(|r| D::Db::uuid(r, "endpoint_id")).collect()
    }

    async fn apply_transition(
        conn: &mut Conn<D>,
        site_id: Uuid,
        member: Uuid,
        transition: &Transition,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q = match transition {
            Transition::Fire { key, kind, .. } => {
                let mut q = Sql::<D>::new(
                    "INSERT INTO alert_state (site_id, wellness_plan_membership_id, credit_type, unit_code, kind, \
                     updated_at)",
                );
                q.values([()], |q, ()| {
                    q.uuid(site_id).uuid(member).text(key.0.as_str()).text(key.1.clone()).text(kind.as_str()).time(now);
                });
                q.push(" ON CONFLICT DO NOTHING");
                q
            }
            Transition::Rearm { key, kind } => {
                let mut q = Sql::<D>::new("DELETE FROM alert_state WHERE site_id = ");
                q.uuid(site_id)
                    .push(" AND wellness_plan_membership_id = ")
                    .uuid(member)
                    .push(" AND credit_type = ")
                    .text(key.0.as_str())
                    .push(" AND unit_code = ")
                    .text(key.1.clone())
                    .push(" AND kind = ")
                    .text(kind.as_str());
                q
            }
        };
        q.execute(conn).await.map_err(sqlx_err)?;
        Ok(())
    }
}

#[async_trait]
impl<D: Dialect> Alerts for SqlStore<D> {
    async fn derive_alerts(
        &self,
        policy: &AlertPolicy,
        now: DateTime<Utc>,
        batch: u32,
    ) -> Result<AlerterStep, StoreError> {
        let batch = batch.max(1);
        let (plan, mut tx) = if D::SINGLE_WRITER {
            // One write connection serves the whole store: plan (every read) on a reader
            // first, so commands wait only for the writes; a step that went first in
            // the meantime moved the checkpoint, and this plan is dropped.
            let plan = Self::plan_step(&mut *self.read_conn().await?, policy, now, batch).await?;
            let mut tx = self.begin().await?;
            D::lock_alerter(&mut tx).await?;
            if checkpoint_in::<D>(&mut tx).await? != plan.as_ref().map(|p| p.after) {
                return Ok(AlerterStep { events: 0, alerts: 0, more: true });
            }
            (plan, tx)
        } else {
            // Plan under the lock, on the step's own connection: replicas queue for it
            // instead of planning the same events twice.
            let mut tx = self.begin().await?;
            D::lock_alerter(&mut tx).await?;
            (Self::plan_step(&mut tx, policy, now, batch).await?, tx)
        };
        let Some(plan) = plan else {
            // The first step ever: history raises no alerts, so start at the feed's end.
            let end = D::feed_end(&mut tx).await?;
            save_checkpoint::<D>(&mut tx, end, now).await?;
            tx.commit().await.map_err(sqlx_err)?;
            return Ok(AlerterStep { events: 0, alerts: 0, more: true });
        };
        let Some(next) = plan.next else {
            return Ok(AlerterStep::default()); // nothing new; dropping the transaction rolls it back
        };
        let mut alerts = 0;
        let mut endpoints: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for (site_id, member, event_id, transition) in &plan.transitions {
            Self::apply_transition(&mut tx, *site_id, *member, transition, now).await?;
            if let Some(alert) = balance_alert(*site_id, *member, transition, *event_id, now) {
                // Read under the lock: an endpoint deleted meanwhile gets no delivery.
                if let std::collections::btree_map::Entry::Vacant(entry) = endpoints.entry(*site_id) {
                    entry.insert(Self::live_endpoints(&mut tx, *site_id).await?);
                }
                alerts += usize::from(Self::write_alert(&mut tx, &alert, policy, &endpoints[site_id]).await?);
            }
        }
        save_checkpoint::<D>(&mut tx, next, now).await?;
        tx.commit().await.map_err(sqlx_err)?;
        Ok(AlerterStep { events: plan.events, alerts, more: plan.events >= batch as usize })
    }

    async fn derive_expiring_alerts(
        &self,
        policy: &AlertPolicy,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<usize, StoreError> {
        // Found on a reader, written in a short transaction: no lock is needed, as an
        // alert's id is its (credit, endDate), so a scan racing another writes it once.
        // `state` is a column of billing_credits only, so STATE_COLUMN needs no prefix.
        let mut q = Sql::<D>::new(format!(
            "SELECT {}, c.site_id, c.billing_credit_id, coalesce(s.expiring_within_days, ",
            D::STATE_COLUMN
        ));
        q.i64(i64::from(policy.expiring_within_days));
        q.push(
            ") AS window_days FROM billing_credits c LEFT JOIN alert_settings s ON s.site_id = c.site_id \
                WHERE NOT c.deleted AND NOT c.expired AND c.is_active AND c.remaining_amount > 0 \
                AND c.end_date IS NOT NULL AND c.end_date > ",
        );
        q.time(now).push(" AND c.end_date <= ").time(now).push(" + ");
        let mut days = String::from("coalesce(s.expiring_within_days, ");
        // The default is inlined: it is the service's own number, not input.
        days.push_str(&policy.expiring_within_days.to_string());
        days.push(')');
        q.push(D::days(&days));
        q.push(
            " AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.site_id = c.site_id \
             AND a.billing_credit_id = c.billing_credit_id AND a.end_date = c.end_date) ORDER BY c.end_date LIMIT ",
        );
        q.i64(i64::from(limit));
        let rows = q.fetch_all(&mut *self.read_conn().await?).await.map_err(sqlx_err)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let mut endpoints: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        let mut written = 0;
        for row in &rows {
            let credit = rows::listed_state::<D>(row, None)?;
            let window = D::Db::i64(row, "window_days")?.clamp(0, i64::from(u32::MAX)) as u32;
            let Some(alert) = expiring_alert(&credit, window, now) else { continue };
            if let std::collections::btree_map::Entry::Vacant(entry) = endpoints.entry(credit.site_id) {
                entry.insert(Self::live_endpoints(&mut tx, credit.site_id).await?);
            }
            written += usize::from(Self::write_alert(&mut tx, &alert, policy, &endpoints[&credit.site_id]).await?);
        }
        tx.commit().await.map_err(sqlx_err)?;
        Ok(written)
    }

    async fn alert_settings(&self, site_id: Uuid) -> Result<Option<AlertSettings>, StoreError> {
        Self::settings_in(&mut *self.read_conn().await?, site_id).await
    }

    async fn put_alert_settings(
        &self,
        site_id: Uuid,
        settings: &AlertSettings,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let per_unit: BTreeMap<&str, String> =
            settings.low_thresholds.iter().map(|(unit, t)| (unit.as_str(), t.to_string())).collect();
        let per_unit = serde_json::to_string(&per_unit).expect("a map of strings is JSON");
        let mut q = Sql::<D>::new(
            "INSERT INTO alert_settings (site_id, default_low_threshold, low_thresholds, expiring_within_days, updated_at)",
        );
        q.values([()], |q, ()| {
            q.uuid(site_id)
                .opt_text(settings.default_low_threshold.map(|t| t.to_string()))
                .text(per_unit.clone())
                .opt_i64(settings.expiring_within_days.map(i64::from))
                .time(now);
        });
        q.push(
            " ON CONFLICT (site_id) DO UPDATE SET default_low_threshold = excluded.default_low_threshold, \
             low_thresholds = excluded.low_thresholds, expiring_within_days = excluded.expiring_within_days, \
             updated_at = excluded.updated_at",
        );
        q.execute(&mut *self.write_conn().await?).await.map_err(sqlx_err)?;
        Ok(())
    }
}

/// Where the alerter has read the feed up to; None before its first step.
async fn checkpoint_in<D: Dialect>(conn: &mut Conn<D>) -> Result<Option<FeedCursor>, StoreError> {
    let row = Sql::<D>::new("SELECT cursor FROM alert_checkpoint WHERE id = 1")
        .fetch_optional(conn)
        .await
        .map_err(sqlx_err)?;
    let Some(text) = row.map(|row| D::Db::text(&row, "cursor")).transpose()? else { return Ok(None) };
    FeedCursor::decode(&text).map(Some).ok_or_else(|| StoreError::Corrupt(format!("alert checkpoint {text:?}")))
}

async fn save_checkpoint<D: Dialect>(
    conn: &mut Conn<D>,
    cursor: FeedCursor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut q = Sql::<D>::new("INSERT INTO alert_checkpoint (id, cursor, updated_at)");
    q.values([()], |q, ()| {
        q.i16(1).text(cursor.encode()).time(now);
    });
    q.push(" ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at");
    q.execute(conn).await.map_err(sqlx_err)?;
    Ok(())
}
