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

fn ctx(dir: &std::path::Path) -> BrokerCtx {
    let config = Config::load(None, &Overrides::default()).unwrap();
    let controller = Arc::new(Controller::open(0, dir, config.topic_defaults(), 1).unwrap());
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
            CancellationToken::new(),
        ),
        controller,
        max_fetch_wait: Duration::from_secs(60),
        auto_create_topics: true,
        shutdown: CancellationToken::new(),
    }
}

#[tokio::test]
async fn missing_body_and_bad_version_are_envelope_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path());
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
    let ctx = ctx(dir.path());
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

    let produce = v1::ProduceRequest {
        acks: 0,
        ..Default::default()
    };
    assert!(dispatch(&ctx, RequestEnvelope::new(2, "t", produce))
        .await
        .is_none());
}

#[tokio::test]
async fn shutdown_ends_a_long_poll() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(ctx(dir.path()));
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
    let c2 = ctx.clone();
    let task =
        tokio::spawn(async move { dispatch(&c2, RequestEnvelope::new(1, "t", fetch)).await });
    tokio::task::yield_now().await;
    ctx.shutdown.cancel();
    let r = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
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
    let ctx = ctx(dir.path());
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
