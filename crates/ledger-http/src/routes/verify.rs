//! Verify one credit: the server recomputes its hash chain and projection.

use actix_web::{web, HttpRequest, HttpResponse};
use ledger_store::audit_credit;

use super::credit_id;
use super::query::{query_pairs, unknown};
use crate::auth::{Audit, SiteAccess};
use crate::dto::CreditVerificationDto;
use crate::problem::{ApiError, ReadProblems};
use crate::startup::AppState;

pub const VERIFY_PATH: &str = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/verify";

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/verify", tag = "Audit",
    summary = "Recompute a credit's hash chain and projection; names the first event that does not match (needs billing-credit:audit)",
    params(("siteId" = Uuid, Path, description = "The site the credit belongs to"),
           ("billingCreditId" = Uuid, Path, description = "The credit to verify (deleted credits too)")),
    responses(
        (status = 200, description = "The verdict: `ok`, or the first mismatch", body = CreditVerificationDto),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
pub async fn verify_credit(
    access: SiteAccess<Audit>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    if let Some((key, _)) = query_pairs(&req)?.into_iter().next() {
        return Err(unknown(&key));
    }
    let verdict =
        audit_credit::verify_credit(state.store.as_ref(), access.site_id, id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(CreditVerificationDto::new(id, &verdict)))
}
