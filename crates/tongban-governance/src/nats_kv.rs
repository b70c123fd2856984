//! Opening a JetStream KV bucket, shared by the cluster registry and config centre.

use async_nats::jetstream::{kv, stream};

/// Connects to `url` and opens (or creates) `bucket`, keeping `history` versions per key.
///
/// The stream a KV bucket is, made directly: `create_key_value` first asks for account
/// information in a shape nats-server 2.9 (Debian's) does not answer.
pub(crate) async fn open_bucket(
    url: &str,
    bucket: &str,
    history: i64,
) -> Result<kv::Store, String> {
    let client = async_nats::connect(url).await.map_err(|e| e.to_string())?;
    let js = async_nats::jetstream::new(client);
    let cfg = stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        max_bytes: -1,
        max_message_size: -1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    js.get_or_create_stream(cfg)
        .await
        .map_err(|e| e.to_string())?;
    js.get_key_value(bucket).await.map_err(|e| e.to_string())
}
