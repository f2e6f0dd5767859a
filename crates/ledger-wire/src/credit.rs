//! The credit body shared by REST create/PUT and the NATS `issue` command.

use chrono::{DateTime, Utc};
use ledger_domain::{Coding, CreditDetails, CreditDraft, CreditType, JsonObject};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::json as wire;

/// A coded value: which code, from which code system, shown how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodingDto {
    #[schema(example = "string")]
    pub code: Option<String>,
    #[schema(example = "string")]
    pub system: Option<String>,
    #[schema(example = "string")]
    pub display: Option<String>,
}

impl From<CodingDto> for Coding {
    fn from(c: CodingDto) -> Self {
        Coding { code: c.code, system: c.system, display: c.display }
    }
}

impl From<&Coding> for CodingDto {
    fn from(c: &Coding) -> Self {
        CodingDto { code: c.code.clone(), system: c.system.clone(), display: c.display.clone() }
    }
}

/// Create (POST) and replace (PUT) body: the whole credit.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BillingCreditBody {
    /// Entity the credit is currently associated/applied to, if different from availability.
    #[schema(value_type = Option<Object>)]
    pub applied_to: Option<JsonObject>,
    #[schema(value_type = Option<Object>)]
    pub available_to: Option<JsonObject>,
    /// Canonical identifier for the billing credit. Optional on create (generated when
    /// absent); sending the same id and body again returns the existing credit.
    pub billing_credit_id: Option<Uuid>,
    /// Whether the credit is tracked as a quantity (e.g., visits) or a monetary value.
    #[schema(value_type = String, example = "quantity")]
    pub credit_type: CreditType,
    /// Date on which the credit expires (exclusive), if applicable.
    #[serde(default, deserialize_with = "wire::optional_date")]
    #[schema(value_type = Option<String>, example = "2025-01-01")]
    pub end_date: Option<DateTime<Utc>>,
    #[schema(value_type = Option<Object>)]
    pub expiry: Option<JsonObject>,
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<JsonObject>,
    /// Defaults to true.
    pub is_active: Option<bool>,
    /// Must equal totalAmount - usedAmount - wastedAmount when sent.
    #[serde(default, deserialize_with = "wire::optional_amount")]
    #[schema(value_type = Option<f64>, example = 0)]
    pub remaining_amount: Option<Decimal>,
    /// Date from which the credit becomes valid.
    #[serde(deserialize_with = "wire::date")]
    #[schema(value_type = String, example = "2025-01-01")]
    pub start_date: DateTime<Utc>,
    #[serde(deserialize_with = "wire::amount")]
    #[schema(value_type = f64, example = 0)]
    pub total_amount: Decimal,
    #[serde(default, deserialize_with = "wire::optional_amount")]
    #[schema(value_type = Option<f64>, example = 0)]
    pub used_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "wire::optional_amount")]
    #[schema(value_type = Option<f64>, example = 0)]
    pub wasted_amount: Option<Decimal>,
    pub wellness_plan_benefit_id: Option<Uuid>,
    pub wellness_plan_id: Option<Uuid>,
    pub wellness_plan_membership_cycle_id: Option<Uuid>,
    pub wellness_plan_membership_id: Option<Uuid>,
    pub wellness_plan_membership_status_period_id: Option<Uuid>,
    pub amount_type: Option<CodingDto>,
    pub credit_category: Option<CodingDto>,
    pub currency: Option<CodingDto>,
    pub measurement_unit: Option<CodingDto>,
}

impl BillingCreditBody {
    pub fn into_draft(self) -> CreditDraft {
        CreditDraft {
            details: CreditDetails {
                credit_type: self.credit_type,
                start_date: self.start_date,
                end_date: self.end_date,
                wellness_plan_id: self.wellness_plan_id,
                wellness_plan_benefit_id: self.wellness_plan_benefit_id,
                wellness_plan_membership_id: self.wellness_plan_membership_id,
                wellness_plan_membership_cycle_id: self.wellness_plan_membership_cycle_id,
                wellness_plan_membership_status_period_id: self.wellness_plan_membership_status_period_id,
                amount_type: self.amount_type.map(Into::into),
                credit_category: self.credit_category.map(Into::into),
                currency: self.currency.map(Into::into),
                measurement_unit: self.measurement_unit.map(Into::into),
                applied_to: self.applied_to,
                available_to: self.available_to,
                expiry: self.expiry,
                extensions: self.extensions,
            },
            is_active: self.is_active.unwrap_or(true),
            total_amount: self.total_amount,
            used_amount: self.used_amount.unwrap_or_default(),
            wasted_amount: self.wasted_amount.unwrap_or_default(),
            remaining_amount: self.remaining_amount,
        }
    }
}
