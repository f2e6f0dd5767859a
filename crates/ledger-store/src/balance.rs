//! A member's credits as they stood at an instant, for the balance read model: the live
//! projections for now, each credit's events folded for an instant in the past.

use chrono::{DateTime, Utc};
use ledger_domain::Credit;
use uuid::Uuid;

use crate::error::StoreError;
use crate::history;
use crate::model::Tombstones;
use crate::ports::Reads;

/// The most credits one member's balance sums. A member with more is refused rather than
/// summed in part: a balance that silently leaves credits out would be wrong.
pub const MEMBER_CREDITS_MAX: usize = 1_000;

/// Why a member's credits could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MemberCreditsError {
    #[error("the member has more than {MEMBER_CREDITS_MAX} credits; a balance sums at most that many")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The member's live credits in the site, now (`as_of` None) or as they stood at `as_of`.
pub async fn member_credits(
    store: &dyn Reads,
    site_id: Uuid,
    membership_id: Uuid,
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<Credit>, MemberCreditsError> {
    let Some(at) = as_of else {
        // Now: the live projections, in one query (one more than allowed, to tell).
        let credits = store.membership_credits(site_id, membership_id, MEMBER_CREDITS_MAX as u32 + 1).await?;
        if credits.len() > MEMBER_CREDITS_MAX {
            return Err(MemberCreditsError::TooMany);
        }
        return Ok(credits);
    };
    // As of a past instant: each credit folded from its events, those deleted since too.
    let ids = store.membership_credit_ids(site_id, membership_id, Tombstones::Included).await?;
    if ids.len() > MEMBER_CREDITS_MAX {
        return Err(MemberCreditsError::TooMany);
    }
    let mut credits = Vec::with_capacity(ids.len());
    for id in ids {
        credits.extend(history::as_of(store, site_id, id, at).await?);
    }
    Ok(credits)
}
