//! The bounds of what the ledger accepts on any wire, chosen well inside what every store
//! and every reader (serde_json's 128-level recursion limit, Postgres jsonb, the NATS
//! payload limit) can always hold and read back. A value at a bound is accepted; one past
//! it is refused with the field and the bound named.

/// How deep a free-form object (`appliedTo`, `availableTo`, `expiry`, `extensions`) may
/// nest, counting the object itself as level 1. A stored event wraps the credit's fields
/// in a few levels of its own; this leaves a wide margin under serde_json's limit of 128.
pub const FREE_FORM_DEPTH_MAX: usize = 32;

/// The size of one free-form object, as compact JSON.
pub const FREE_FORM_BYTES_MAX: usize = 16 * 1024;

/// The length of a text field (reference, note, reason, a coding's code/system/display),
/// in characters.
pub const TEXT_CHARS_MAX: usize = 1_000;
