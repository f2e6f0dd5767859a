//! Creating the ledger's streams with the configured replica count.
//!
//! A stream that already exists with another replica count (a single server grown into a
//! cluster, or `NATS_STREAM_REPLICAS` changed) is updated to the configured count at
//! start: JetStream copies its messages to the new peers (or drops the extra ones) while
//! it stays in service. Its other settings are left as they are.

use async_nats::jetstream::{self, stream};

/// Creates the stream when absent; sets the replica count of one that exists.
pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
    what: &str,
) -> anyhow::Result<stream::Stream> {
    let name = config.name.clone();
    let replicas = config.num_replicas;
    let stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| anyhow::anyhow!("creating the {what} {name} ({replicas} replicas): {e}"))?;
    let current = stream.cached_info().config.clone();
    if current.num_replicas == replicas {
        return Ok(stream);
    }
    let from = current.num_replicas;
    let refused = |why: String| {
        anyhow::anyhow!(
            "the {what} {name} has {from} replicas and NATS_STREAM_REPLICAS asks for {replicas}, \
             but changing it failed (does the cluster have {replicas} JetStream servers?): {why}"
        )
    };
    // A server outside a cluster (its stream info has no cluster) accepts the change and
    // reports it, but keeps one copy: refused here as it refuses to create such a stream.
    if replicas > 1 && stream.cached_info().cluster.is_none() {
        return Err(refused("the NATS server is not part of a cluster".into()));
    }
    tracing::warn!(stream = %name, from = current.num_replicas, to = replicas, "changing the replica count of an existing stream");
    let updated = js
        .update_stream(stream::Config { num_replicas: replicas, ..current })
        .await
        .map_err(|e| refused(e.to_string()))?;
    if updated.config.num_replicas != replicas {
        return Err(refused(format!("the server kept {} replicas", updated.config.num_replicas)));
    }
    js.get_stream(&name).await.map_err(|e| anyhow::anyhow!("reading the {what} {name} back: {e}"))
}
