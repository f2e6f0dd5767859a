//! The seed's JSON shapes: the credit's bodies and the credit itself (`ledger-wire`,
//! shared with NATS), and the list envelope.

use serde::Serialize;
use utoipa::ToSchema;

pub use ledger_wire::{BillingCredit, BillingCreditBody, BillingCreditPatchBody, CodingDto};

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
