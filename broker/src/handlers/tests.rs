//! Handler tests without sockets: dispatch on a context over a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir_protocol::native::v1::{self, response_envelope::Body, RequestEnvelope};
use weir_protocol::ErrorCode;

use super::dispatch;
use crate::config::{Config, Overrides};
use crate::controller::Controller;
use crate::ctx::BrokerCtx;

async fn ctx(dir: &std::path::Path) -> BrokerCtx {
    let config = Config::load(None, &Overrides::default()).unwrap();
    let controller = Arc::new(
        Controller::open(
            0,
            dir,
            config.topic_defaults(),
            crate::controller::ControllerSettings::default(),
            &config.cluster,
        )
        .await
        .unwrap(),
    );
    BrokerCtx {
        node_id: 0,
        advertised_host: "127.0.0.1".into(),
        advertised_port: 9292,
        cluster_id: "test".into(),
        topics: controller.topics().clone(),
        groups: crate::coordinator::Coordinator::new(
            crate::coordinator::CoordinatorConfig {
                offsets_topic_partitions: 1,
                group: crate::group::GroupConfig::default(),
            },
            controller.topics().clone(),
            crate::coordinator::ImageView::new(0, controller.subscribe(), controller.lease()),
            CancellationToken::new(),
        ),
        controller,
        max_fetch_wait: Duration::from_secs(60),
        fetch_max_bytes: 50 << 20,
        fetch_zero_copy: true,
        auto_create_topics: true,
        shutdown: CancellationToken::new(),
    }
}

#[tokio::test]
async fn missing_body_and_bad_version_are_envelope_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path()).await;
    let r = dispatch(
        &ctx,
        RequestEnvelope {
            correlation_id: 5,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (r.correlation_id, ErrorCode::from_i32(r.error_code)),
        (5, ErrorCode::UnsupportedVersion)
    );
    let mut env = RequestEnvelope::new(6, "t", v1::FetchRequest::default());
    env.api_version = -1;
    let r = dispatch(&ctx, env).await.unwrap();
    assert_eq!(
        ErrorCode::from_i32(r.error_code),
        ErrorCode::UnsupportedVersion
    );
}

#[tokio::test]
async fn auto_create_and_acks_zero() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path()).await;
    let meta = v1::MetadataRequest {
        topics: vec!["auto".into()],
        all_topics: false,
        allow_auto_topic_creation: true,
    };
    let r = dispatch(&ctx, RequestEnvelope::new(1, "t", meta))
        .await
        .unwrap();
    let Some(Body::Metadata(m)) = r.body else {
        panic!()
    };
    assert_eq!(m.topics[0].error_code, 0);
    assert_eq!(m.topics[0].partitions.len(), 1);

    // Internal topics are never auto-created as plain topics.
    let meta = v1::MetadataRequest {
        topics: vec!["__transaction_state".into()],
        all_topics: false,
        allow_auto_topic_creation: true,
    };
    let r = dispatch(&ctx, RequestEnvelope::new(1, "t", meta))
        .await
        .unwrap();
    let Some(Body::Metadata(m)) = r.body else {
        panic!()
    };
    assert_eq!(
        ErrorCode::from_i32(m.topics[0].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
    assert!(ctx.topics.get("__transaction_state").is_none());

    let produce = v1::ProduceRequest {
        acks: 0,
        ..Default::default()
    };
    assert!(dispatch(&ctx, RequestEnvelope::new(2, "t", produce))
        .await
        .is_none());
}

/// The parked case (shutdown while the fetch waits) is `graceful_shutdown_answers_a_parked_long_poll`
/// in `broker/tests/api.rs`, which can tell when the fetch is parked; this one covers a
/// fetch that arrives after shutdown began: it must not wait its 60 s.
#[tokio::test]
async fn a_fetch_after_shutdown_answers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(ctx(dir.path()).await);
    ctx.controller
        .create_topic(
            crate::controller::NewTopic {
                name: "lp".into(),
                partitions: 1,
                replication_factor: 1,
                configs: vec![],
            },
            false,
        )
        .await
        .unwrap();
    let fetch = v1::FetchRequest {
        replica_id: None,
        max_wait_ms: 60_000,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 0,
        topics: vec![v1::FetchTopic {
            topic: "lp".into(),
            partitions: vec![v1::FetchPartition {
                partition: 0,
                current_leader_epoch: Some(0),
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
            }],
        }],
    };
    ctx.shutdown.cancel();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        dispatch(&ctx, RequestEnvelope::new(1, "t", fetch)),
    )
    .await
    .expect("answered before its max wait")
    .unwrap();
    let Some(Body::Fetch(f)) = r.body else {
        panic!()
    };
    assert_eq!(f.responses[0].partitions[0].error_code, 0);
    assert!(f.responses[0].partitions[0].records.is_empty());
}

#[tokio::test]
async fn leader_epoch_checks() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path()).await;
    ctx.controller
        .create_topic(
            crate::controller::NewTopic {
                name: "ep".into(),
                partitions: 1,
                replication_factor: -1,
                configs: vec![],
            },
            false,
        )
        .await
        .unwrap();
    for (epoch, want) in [
        (Some(1), ErrorCode::UnknownLeaderEpoch),
        (Some(0), ErrorCode::None),
        (None, ErrorCode::None),
    ] {
        let fetch = v1::FetchRequest {
            replica_id: None,
            topics: vec![v1::FetchTopic {
                topic: "ep".into(),
                partitions: vec![v1::FetchPartition {
                    partition: 0,
                    current_leader_epoch: epoch,
                    fetch_offset: 0,
                    partition_max_bytes: 100,
                }],
            }],
            ..Default::default()
        };
        let r = dispatch(&ctx, RequestEnvelope::new(1, "t", fetch))
            .await
            .unwrap();
        let Some(Body::Fetch(f)) = r.body else {
            panic!()
        };
        assert_eq!(
            ErrorCode::from_i32(f.responses[0].partitions[0].error_code),
            want,
            "{epoch:?}"
        );
    }
}

#[tokio::test]
async fn fetch_max_bytes_caps_what_a_client_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = ctx(dir.path()).await;
    ctx.fetch_max_bytes = 300;
    ctx.controller
        .create_topic(
            crate::controller::NewTopic {
                name: "cap".into(),
                partitions: 1,
                replication_factor: -1,
                configs: vec![],
            },
            false,
        )
        .await
        .unwrap();
    let batch = weir_storage::testkit::simple_batch(1, 200, 1);
    for i in 0..3 {
        let produce = v1::ProduceRequest {
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![v1::TopicProduceData {
                name: "cap".into(),
                partition_data: vec![v1::PartitionProduceData {
                    index: 0,
                    records: batch.clone().into(),
                }],
            }],
            ..Default::default()
        };
        let r = dispatch(&ctx, RequestEnvelope::new(i, "t", produce))
            .await
            .unwrap();
        let Some(Body::Produce(p)) = r.body else {
            panic!()
        };
        assert_eq!(p.responses[0].partition_responses[0].error_code, 0);
    }
    let fetch = v1::FetchRequest {
        replica_id: None,
        max_bytes: i32::MAX,
        topics: vec![v1::FetchTopic {
            topic: "cap".into(),
            partitions: vec![v1::FetchPartition {
                partition: 0,
                current_leader_epoch: None,
                fetch_offset: 0,
                partition_max_bytes: i32::MAX,
            }],
        }],
        ..Default::default()
    };
    let r = dispatch(&ctx, RequestEnvelope::new(9, "t", fetch))
        .await
        .unwrap();
    let Some(Body::Fetch(f)) = r.body else {
        panic!()
    };
    let part = &f.responses[0].partitions[0];
    assert_eq!(part.high_watermark, 3);
    assert_eq!(
        part.records.len(),
        batch.len(),
        "one batch fits in the broker's 300-byte cap"
    );
}
