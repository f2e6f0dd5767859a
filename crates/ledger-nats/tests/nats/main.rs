//! Against the live NATS JetStream and PostgreSQL that `scripts/test` starts
//! (TEST_NATS_URL, TEST_DATABASE_URL).

mod alerts;
mod common;
mod exactly_once;
mod faults;
mod feed_agreement;
mod poison;
mod rejections;
mod replicas;
mod strict;
