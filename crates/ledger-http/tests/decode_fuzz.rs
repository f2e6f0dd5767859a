//! Fuzzing the JSON command decoding: whatever bytes arrive, decoding never panics, a
//! refusal is a 400 naming a field and a rule, and what decodes is judged by `decide`
//! without panicking either.

use chrono::Utc;
use ledger_domain::{decide, Command};
use ledger_http::body::parse;
use ledger_http::dto::{BillingCreditBody, BillingCreditPatchBody, ConsumeBody, ReverseBody, UseBody};
use ledger_http::problem::ApiError;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn assert_clear_refusal(result: Result<(), ApiError>) {
    if let Err(error) = result {
        match error {
            ApiError::BadRequest { errors, .. } => {
                assert!(!errors.is_empty() && errors.iter().all(|e| !e.field.is_empty() && !e.rule.is_empty()))
            }
            other => panic!("decoding refused with {other:?}"),
        }
    }
}

/// Any JSON value, a few levels deep, with numbers of every shape.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "-?[0-9]{1,30}(\\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?"
            .prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::Null)),
        "[a-zA-Z0-9 :_-]{0,12}".prop_map(Value::String),
        Just(json!("2025-01-01")),
        Just(json!("123e4567-e89b-12d3-a456-426614174000")),
        Just(json!("quantity")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "billingCreditId",
    "creditType",
    "startDate",
    "endDate",
    "totalAmount",
    "usedAmount",
    "wastedAmount",
    "remainingAmount",
    "isActive",
    "wellnessPlanId",
    "wellnessPlanMembershipId",
    "currency",
    "measurementUnit",
    "appliedTo",
    "extensions",
    "amount",
    "reference",
    "eventId",
    "occurredAt",
    "allowPartial",
    "creditCategory",
];

/// Objects with the API's own field names and arbitrary values.
fn api_object() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((proptest::sample::select(FIELDS), json_value()), 0..10).prop_map(|fields| {
        let object: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        serde_json::to_vec(&Value::Object(object)).unwrap()
    })
}

fn decode_everything(bytes: &[u8]) {
    let now = Utc::now();
    assert_clear_refusal(parse::<BillingCreditBody>(bytes).map(|b| {
        let _ = decide(None, &Command::Issue(b.into_draft()), now);
    }));
    assert_clear_refusal(parse::<BillingCreditPatchBody>(bytes).map(|b| {
        let _ = b.into_patch();
    }));
    assert_clear_refusal(parse::<UseBody>(bytes).map(|_| ()));
    assert_clear_refusal(parse::<ReverseBody>(bytes).map(|_| ()));
    assert_clear_refusal(parse::<ConsumeBody>(bytes).map(|_| ()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&bytes);
    }

    #[test]
    fn api_shaped_objects_decode_or_name_the_field(bytes in api_object()) {
        decode_everything(&bytes);
    }
}
