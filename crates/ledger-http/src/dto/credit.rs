//! The seed's JSON shapes: request bodies in, the billing credit and list envelope out.

use chrono::{DateTime, Utc};
use ledger_domain::{Credit, CreditPatch, CreditType, JsonObject};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::wire;

pub use ledger_wire::{BillingCreditBody, CodingDto};

/// PATCH body: only the fields sent change; `null` clears an optional field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BillingCreditPatchBody {
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<Object>)]
    pub applied_to: Option<Option<JsonObject>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<Object>)]
    pub available_to: Option<Option<JsonObject>>,
    #[schema(value_type = Option<String>, example = "quantity")]
    pub credit_type: Option<CreditType>,
    #[serde(default, deserialize_with = "wire::patch_date")]
    #[schema(value_type = Option<String>, example = "2025-01-01")]
    pub end_date: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<Object>)]
    pub expiry: Option<Option<JsonObject>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<Option<JsonObject>>,
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "wire::optional_amount")]
    #[schema(value_type = Option<f64>, example = 0)]
    pub remaining_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "wire::optional_date")]
    #[schema(value_type = Option<String>, example = "2025-01-01")]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "wire::optional_amount")]
    #[schema(value_type = Option<f64>, example = 0)]
    pub total_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "wire::optional_amount")]
    #[schema(value_type = Option<f64>, example = 0)]
    pub used_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "wire::optional_amount")]
    #[schema(value_type = Option<f64>, example = 0)]
    pub wasted_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<Uuid>)]
    pub wellness_plan_benefit_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<Uuid>)]
    pub wellness_plan_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<Uuid>)]
    pub wellness_plan_membership_cycle_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<Uuid>)]
    pub wellness_plan_membership_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<Uuid>)]
    pub wellness_plan_membership_status_period_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<CodingDto>)]
    pub amount_type: Option<Option<CodingDto>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<CodingDto>)]
    pub credit_category: Option<Option<CodingDto>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<CodingDto>)]
    pub currency: Option<Option<CodingDto>>,
    #[serde(default, deserialize_with = "wire::patch")]
    #[schema(value_type = Option<CodingDto>)]
    pub measurement_unit: Option<Option<CodingDto>>,
}

impl BillingCreditPatchBody {
    pub fn into_patch(self) -> CreditPatch {
        let coding = |c: Option<Option<CodingDto>>| c.map(|c| c.map(Into::into));
        CreditPatch {
            credit_type: self.credit_type,
            start_date: self.start_date,
            end_date: self.end_date,
            wellness_plan_id: self.wellness_plan_id,
            wellness_plan_benefit_id: self.wellness_plan_benefit_id,
            wellness_plan_membership_id: self.wellness_plan_membership_id,
            wellness_plan_membership_cycle_id: self.wellness_plan_membership_cycle_id,
            wellness_plan_membership_status_period_id: self.wellness_plan_membership_status_period_id,
            amount_type: coding(self.amount_type),
            credit_category: coding(self.credit_category),
            currency: coding(self.currency),
            measurement_unit: coding(self.measurement_unit),
            applied_to: self.applied_to,
            available_to: self.available_to,
            expiry: self.expiry,
            extensions: self.extensions,
            is_active: self.is_active,
            total_amount: self.total_amount,
            used_amount: self.used_amount,
            wasted_amount: self.wasted_amount,
            remaining_amount: self.remaining_amount,
        }
    }
}

/// A billing credit as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingCredit {
    #[schema(value_type = Option<Object>)]
    pub applied_to: Option<JsonObject>,
    #[schema(value_type = Option<Object>)]
    pub available_to: Option<JsonObject>,
    pub billing_credit_id: Uuid,
    /// Timestamp when the billing credit was created.
    #[schema(example = "2025-01-01T00:00:00.000Z")]
    pub created_at: String,
    #[schema(value_type = String, example = "quantity")]
    pub credit_type: CreditType,
    #[schema(example = "2025-01-01T00:00:00Z")]
    pub end_date: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub expiry: Option<JsonObject>,
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<JsonObject>,
    pub is_active: bool,
    /// totalAmount - usedAmount - wastedAmount.
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 0)]
    pub remaining_amount: Decimal,
    #[schema(example = "2025-01-01T00:00:00Z")]
    pub start_date: String,
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 0)]
    pub total_amount: Decimal,
    #[schema(example = "2025-01-01T00:00:00.000Z")]
    pub updated_at: String,
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 0)]
    pub used_amount: Decimal,
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 0)]
    pub wasted_amount: Decimal,
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

impl From<&Credit> for BillingCredit {
    fn from(c: &Credit) -> Self {
        let d = &c.details;
        BillingCredit {
            applied_to: d.applied_to.clone(),
            available_to: d.available_to.clone(),
            billing_credit_id: c.billing_credit_id,
            created_at: wire::format_timestamp(&c.created_at),
            credit_type: d.credit_type,
            end_date: d.end_date.as_ref().map(wire::format_date),
            expiry: d.expiry.clone(),
            extensions: d.extensions.clone(),
            is_active: c.is_active,
            remaining_amount: c.remaining_amount(),
            start_date: wire::format_date(&d.start_date),
            total_amount: c.total_amount,
            updated_at: wire::format_timestamp(&c.updated_at),
            used_amount: c.used_amount,
            wasted_amount: c.wasted_amount,
            wellness_plan_benefit_id: d.wellness_plan_benefit_id,
            wellness_plan_id: d.wellness_plan_id,
            wellness_plan_membership_cycle_id: d.wellness_plan_membership_cycle_id,
            wellness_plan_membership_id: d.wellness_plan_membership_id,
            wellness_plan_membership_status_period_id: d.wellness_plan_membership_status_period_id,
            amount_type: d.amount_type.as_ref().map(Into::into),
            credit_category: d.credit_category.as_ref().map(Into::into),
            currency: d.currency.as_ref().map(Into::into),
            measurement_unit: d.measurement_unit.as_ref().map(Into::into),
        }
    }
}

/// Paging metadata of the platform's list envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    pub page: u32,
    pub page_size: u32,
    pub total: u64,
    pub total_pages: u64,
    pub has_next: bool,
    pub has_previous: bool,
}

impl PageMeta {
    pub fn new(page: u32, page_size: u32, total: u64) -> Self {
        let total_pages = total.div_ceil(u64::from(page_size));
        PageMeta {
            page,
            page_size,
            total,
            total_pages,
            has_next: u64::from(page) + 1 < total_pages,
            has_previous: page > 0,
        }
    }
}

/// `{data, meta}`: one page of billing credits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BillingCreditList {
    pub data: Vec<BillingCredit>,
    pub meta: PageMeta,
}
