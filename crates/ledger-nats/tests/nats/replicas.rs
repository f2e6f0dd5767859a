//! NATS_STREAM_REPLICAS against the shared server, a single node: more replicas than it
//! can hold are refused at start with a message naming the stream and the count, both
//! for streams to create and for streams that exist with another count.

use ledger_store::testing::TestDatabase;

use crate::common::Env;

#[tokio::test]
async fn more_replicas_than_the_servers_can_hold_are_refused_clearly() {
    let env = Env::new("replicas").await;
    let db = TestDatabase::postgres().await;
    let store = db.store().await;

    let mut settings = env.settings();
    settings.stream_replicas = 3;
    let error = ledger_nats::start(settings, store.clone()).await.err().expect("3 replicas on one server is refused");
    let message = format!("{error:#}");
    assert!(message.contains("command stream") && message.contains("3 replicas"), "{message}");

    // Created with 1, then asked for 3: the existing stream cannot be changed.
    ledger_nats::start(env.settings(), store.clone()).await.expect("1 replica").shutdown().await.unwrap();
    let mut settings = env.settings();
    settings.stream_replicas = 3;
    let error = ledger_nats::start(settings, store).await.err().expect("3 replicas on one server is refused");
    let message = format!("{error:#}");
    assert!(message.contains("has 1 replicas and NATS_STREAM_REPLICAS asks for 3"), "{message}");
}
