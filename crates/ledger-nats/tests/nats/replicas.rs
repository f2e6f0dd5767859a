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

/// The lease and checkpoint are read from the KV stream's leader: a bucket made with
/// direct get (which lets a lagging follower answer with an old revision) is changed at
/// start, and a new one is made without it.
#[tokio::test]
async fn the_kv_bucket_is_read_from_its_leader() {
    let env = Env::new("kv-leader").await;
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let kv_stream = format!("KV_{}", env.settings().kv_bucket);
    let direct = |info: async_nats::jetstream::stream::Info| info.config.allow_direct;

    ledger_nats::start(env.settings(), store.clone()).await.expect("start").shutdown().await.unwrap();
    let made = env.js.get_stream(&kv_stream).await.expect("the bucket's stream").info().await.unwrap().clone();
    assert!(!direct(made.clone()), "a new bucket has direct get off");

    env.js
        .update_stream(async_nats::jetstream::stream::Config { allow_direct: true, ..made.config })
        .await
        .expect("direct get on, as an older version made it");
    ledger_nats::start(env.settings(), store).await.expect("start again").shutdown().await.unwrap();
    let changed = env.js.get_stream(&kv_stream).await.unwrap().info().await.unwrap().clone();
    assert!(!direct(changed), "direct get was turned off at start");
}
