//! The credit on every wire: the create/PUT body (also the NATS `issue` and `replace`
//! commands), the PATCH body (also the NATS `patch` command) and the credit as the API
//! shows it.
//!
//! The credit's descriptive fields are listed once, in the `credit_shapes!` call at the
//! end of this file; the macro writes them into all three shapes and into their
//! conversions from and to the domain. Adding an identifier, a coding or a free-form
//! object to the credit means adding its name there (and to the domain's
//! `CreditDetails`).
//!
//! Why a macro and not a `#[serde(flatten)]`-ed struct: serde decodes a flattened
//! struct from a buffered copy of its fields, after the whole object was read, so
//! `serde_path_to_error` can no longer name the field at fault: `"startDate":
//! "2025-13-01"` or `"wellnessPlanId": "x"` in a flattened struct is refused as `body`,
//! not as `startDate`/`wellnessPlanId` (tried with this workspace's serde). serde also
//! documents `deny_unknown_fields` as unsupported with `flatten`. The macro keeps every
//! field a plain field of each struct, and the one list of them stays here.

use chrono::{DateTime, Utc};
use ledger_domain::{Coding, Credit, CreditDetails, CreditDraft, CreditPatch, CreditType, JsonObject};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::json as wire;
use crate::{free_form, text};

/// A coded value: which code, from which code system, shown how. Each is at most 1000
/// characters, with no control characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodingDto {
    #[serde(default, deserialize_with = "text::optional_line")]
    #[schema(max_length = 1000, example = "string")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "text::optional_line")]
    #[schema(max_length = 1000, example = "string")]
    pub system: Option<String>,
    #[serde(default, deserialize_with = "text::optional_line")]
    #[schema(max_length = 1000, example = "string")]
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

/// Writes the three shapes of the credit around its descriptive fields, grouped by kind:
/// `ids` (nullable UUIDs), `codings` (nullable [`CodingDto`]s) and `objects` (nullable
/// JSON objects kept as sent, within the bounds of `free_form`). The fields with rules of
/// their own (creditType, the dates, the amounts, isActive) are written out here.
macro_rules! credit_shapes {
    (
        ids { $($(#[$id_doc:meta])* $id:ident,)* }
        codings { $($(#[$coding_doc:meta])* $coding:ident,)* }
        objects($objects_doc:literal) { $($(#[$object_doc:meta])* $object:ident,)* }
    ) => {
        /// Create (POST) and replace (PUT) body: the whole credit.
        #[derive(Debug, Clone, Deserialize, ToSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct BillingCreditBody {
            $(
                $(#[$object_doc])*
                #[doc = $objects_doc]
                #[serde(default, deserialize_with = "free_form::optional")]
                #[schema(value_type = Option<Object>)]
                pub $object: Option<JsonObject>,
            )*
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
            $( $(#[$id_doc])* pub $id: Option<Uuid>, )*
            $( $(#[$coding_doc])* pub $coding: Option<CodingDto>, )*
        }

        impl BillingCreditBody {
            pub fn into_draft(self) -> CreditDraft {
                CreditDraft {
                    details: CreditDetails {
                        credit_type: self.credit_type,
                        start_date: self.start_date,
                        end_date: self.end_date,
                        $( $id: self.$id, )*
                        $( $coding: self.$coding.map(Into::into), )*
                        $( $object: self.$object, )*
                    },
                    is_active: self.is_active.unwrap_or(true),
                    total_amount: self.total_amount,
                    used_amount: self.used_amount.unwrap_or_default(),
                    wasted_amount: self.wasted_amount.unwrap_or_default(),
                    remaining_amount: self.remaining_amount,
                }
            }
        }

        /// PATCH body: only the fields sent change; `null` clears an optional field. The
        /// fields every credit has (creditType, startDate, isActive, the amounts) cannot be
        /// null: `null` for one of them is refused (`not-nullable`).
        #[derive(Debug, Clone, Default, Deserialize, ToSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct BillingCreditPatchBody {
            $(
                $(#[$object_doc])*
                #[doc = $objects_doc]
                #[serde(default, deserialize_with = "free_form::patch")]
                #[schema(value_type = Option<Object>)]
                pub $object: Option<Option<JsonObject>>,
            )*
            /// Not nullable: may be left out, never `null`.
            #[serde(default, deserialize_with = "wire::required")]
            #[schema(value_type = String, example = "quantity")]
            pub credit_type: Option<CreditType>,
            #[serde(default, deserialize_with = "wire::patch_date")]
            #[schema(value_type = Option<String>, example = "2025-01-01")]
            pub end_date: Option<Option<DateTime<Utc>>>,
            /// Not nullable: may be left out, never `null`.
            #[serde(default, deserialize_with = "wire::required")]
            #[schema(value_type = bool)]
            pub is_active: Option<bool>,
            /// Not nullable: may be left out, never `null`.
            #[serde(default, deserialize_with = "wire::required_amount")]
            #[schema(value_type = f64, example = 0)]
            pub remaining_amount: Option<Decimal>,
            /// Not nullable: may be left out, never `null`.
            #[serde(default, deserialize_with = "wire::required_date")]
            #[schema(value_type = String, example = "2025-01-01")]
            pub start_date: Option<DateTime<Utc>>,
            /// Not nullable: may be left out, never `null`.
            #[serde(default, deserialize_with = "wire::required_amount")]
            #[schema(value_type = f64, example = 0)]
            pub total_amount: Option<Decimal>,
            /// Not nullable: may be left out, never `null`.
            #[serde(default, deserialize_with = "wire::required_amount")]
            #[schema(value_type = f64, example = 0)]
            pub used_amount: Option<Decimal>,
            /// Not nullable: may be left out, never `null`.
            #[serde(default, deserialize_with = "wire::required_amount")]
            #[schema(value_type = f64, example = 0)]
            pub wasted_amount: Option<Decimal>,
            $(
                $(#[$id_doc])*
                #[serde(default, deserialize_with = "wire::patch")]
                #[schema(value_type = Option<Uuid>)]
                pub $id: Option<Option<Uuid>>,
            )*
            $(
                $(#[$coding_doc])*
                #[serde(default, deserialize_with = "wire::patch")]
                #[schema(value_type = Option<CodingDto>)]
                pub $coding: Option<Option<CodingDto>>,
            )*
        }

        impl BillingCreditPatchBody {
            pub fn into_patch(self) -> CreditPatch {
                CreditPatch {
                    credit_type: self.credit_type,
                    start_date: self.start_date,
                    end_date: self.end_date,
                    $( $id: self.$id, )*
                    $( $coding: self.$coding.map(|c| c.map(Into::into)), )*
                    $( $object: self.$object, )*
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
            $( $(#[$object_doc])* #[doc = $objects_doc] #[schema(value_type = Option<Object>)] pub $object: Option<JsonObject>, )*
            pub billing_credit_id: Uuid,
            /// Timestamp when the billing credit was created.
            #[schema(example = "2025-01-01T00:00:00.000Z")]
            pub created_at: String,
            #[schema(value_type = String, example = "quantity")]
            pub credit_type: CreditType,
            #[schema(example = "2025-01-01T00:00:00Z")]
            pub end_date: Option<String>,
            pub is_active: bool,
            /// True once the credit expired: its unused balance was written off (CreditExpired,
            /// by the expiry sweep after endDate or by an explicit expire), so nothing more
            /// can be spent from it. A live credit, even one past endDate that the sweep has
            /// not reached yet, says false. Read-only.
            pub expired: bool,
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
            $( $(#[$id_doc])* pub $id: Option<Uuid>, )*
            $( $(#[$coding_doc])* pub $coding: Option<CodingDto>, )*
        }

        impl From<&Credit> for BillingCredit {
            fn from(c: &Credit) -> Self {
                let d = &c.details;
                BillingCredit {
                    billing_credit_id: c.billing_credit_id,
                    created_at: wire::format_timestamp(&c.created_at),
                    credit_type: d.credit_type,
                    end_date: d.end_date.as_ref().map(wire::format_date),
                    is_active: c.is_active,
                    expired: c.expired,
                    remaining_amount: c.remaining_amount(),
                    start_date: wire::format_date(&d.start_date),
                    total_amount: c.total_amount,
                    updated_at: wire::format_timestamp(&c.updated_at),
                    used_amount: c.used_amount,
                    wasted_amount: c.wasted_amount,
                    $( $id: d.$id, )*
                    $( $coding: d.$coding.as_ref().map(Into::into), )*
                    $( $object: d.$object.clone(), )*
                }
            }
        }
    };
}

// The credit's descriptive fields: the one list.
credit_shapes! {
    ids {
        wellness_plan_benefit_id,
        wellness_plan_id,
        wellness_plan_membership_cycle_id,
        wellness_plan_membership_id,
        wellness_plan_membership_status_period_id,
    }
    codings {
        amount_type,
        credit_category,
        currency,
        measurement_unit,
    }
    // Every free-form object's bounds (`limits`; a test checks the numbers are those).
    objects(
        "A free-form JSON object, kept as sent: at most 32 levels deep (the object itself is level 1, \
         each object or array inside it one more), at most 16384 bytes as compact JSON, and no \
         control characters other than tab, line feed and carriage return in its keys and strings."
    ) {
        /// Entity the credit is currently associated/applied to, if different from availability.
        applied_to,
        available_to,
        expiry,
        extensions,
    }
}
