//! The config centre suite on NATS JetStream KV (127.0.0.1:4222, or `TONGBAN_TEST_NATS_URL`).

mod config_suite;

use tongban_governance::config::NatsConfig;

async fn open() -> NatsConfig {
    let url = std::env::var("TONGBAN_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    NatsConfig::connect(&url, "tongban_config_test")
        .await
        .expect("NATS JetStream must be running (bash scripts/services.sh)")
}

config_suite!(open);

#[tokio::test]
async fn a_fresh_bucket_lists_nothing() {
    let url = std::env::var("TONGBAN_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let bucket = format!("tongban_config_fresh_{}", std::process::id());
    let c = NatsConfig::connect(&url, &bucket).await.expect("connect");
    use tongban_governance::config::ConfigCentre;
    let listed = c.list("gateway-routes").await;
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.expect("client"));
    js.delete_stream(format!("KV_{bucket}"))
        .await
        .expect("cleanup");
    assert_eq!(listed.expect("an empty bucket lists fine"), Vec::new());
}
