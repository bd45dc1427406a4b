//! Bad input from clients (reliability-and-faults.md §6.4): each case gets a clear error
//! or, for an undecodable frame, a closed connection; the broker keeps serving others
//! and nothing already stored changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{batch, fetch_req, records, temp_dir, Broker, Client};
use weir_protocol::native::v1::{self, response_envelope::Body, RequestEnvelope};
use weir_protocol::ErrorCode;

fn code(c: i32) -> ErrorCode {
    ErrorCode::from_i32(c)
}

/// A broker with topic "safe" holding two records, and a long-lived bystander connection.
async fn setup(dir: &std::path::Path) -> (Broker, Client) {
    let b = Broker::start(dir, &[]);
    let mut c = b.client().await;
    assert_eq!(
        c.create_topic("safe", 1, &[("max.message.bytes", "2000")])
            .await
            .error_code,
        0
    );
    assert_eq!(
        c.produce("safe", 0, batch(&[b"one", b"two"], 1))
            .await
            .base_offset,
        0
    );
    (b, c)
}

/// The bystander still gets answers and the stored records are unchanged.
async fn still_serving(c: &mut Client) {
    let f = c.fetch("safe", 0, 0, 0, 1).await;
    assert_eq!(
        records(&f.records),
        vec![(0, b"one".to_vec()), (1, b"two".to_vec())]
    );
    assert_eq!(f.high_watermark, 2);
}

#[tokio::test]
async fn undecodable_frames_close_only_that_connection() {
    let dir = temp_dir();
    let (b, mut bystander) = setup(dir.path()).await;

    let mut random = vec![0u8; 4096];
    rand::Rng::fill(&mut rand::rng(), &mut random[..]);
    random[0] = 0; // a plausible (under-limit) length, then noise
    {
        // Noise, then the client stops sending: the frame can never complete, so the
        // broker closes (or it failed to decode already).
        let mut c = b.client().await;
        c.write_raw(&random).await;
        use tokio::io::AsyncWriteExt;
        let _ = c.framed.get_mut().shutdown().await;
        assert!(
            c.is_closed_by_peer().await,
            "random bytes: connection should close"
        );
        still_serving(&mut bystander).await;
    }
    let mut garbage = BytesMut::new();
    garbage.put_u32(6);
    garbage.put_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let mut oversized = BytesMut::new();
    oversized.put_u32(200 * 1024 * 1024); // over the 100 MiB default
    oversized.put_slice(b"tiny");
    let mut huge = BytesMut::new();
    huge.put_u32(u32::MAX);

    for (what, bytes) in [
        ("garbage protobuf", garbage.freeze()),
        ("oversized length", oversized.freeze()),
        ("4 GiB length", huge.freeze()),
    ] {
        let mut c = b.client().await;
        c.write_raw(&bytes).await;
        assert!(
            c.is_closed_by_peer().await,
            "{what}: connection should close"
        );
        still_serving(&mut bystander).await;
    }

    // A truncated frame followed by a hang-up: the broker just drops the connection.
    let mut c = b.client().await;
    let mut frame = BytesMut::new();
    frame.put_u32(100);
    frame.put_slice(&[8, 1, 18, 1]);
    c.write_raw(&frame).await;
    drop(c);
    // Empty frames decode to an envelope without a body: an error response, not a crash.
    let mut c = b.client().await;
    c.write_raw(&[0, 0, 0, 0]).await;
    let r = c.recv().await;
    assert_eq!(code(r.error_code), ErrorCode::UnsupportedVersion);
    still_serving(&mut bystander).await;
}

#[tokio::test]
async fn unknown_api_and_unsupported_versions_get_error_responses() {
    let dir = temp_dir();
    let (b, mut bystander) = setup(dir.path()).await;
    let mut c = b.client().await;

    // Envelope with correlation id 77 and a body in oneof slot 199 (no such API).
    let mut frame = BytesMut::new();
    let body = [8u8, 77, 0xba, 0x0c, 0]; // field 1 = 77; field 199, length 0
    frame.put_u32(body.len() as u32);
    frame.put_slice(&body);
    c.write_raw(&frame).await;
    let r = c.recv().await;
    assert_eq!(r.correlation_id, 77);
    assert_eq!(code(r.error_code), ErrorCode::UnsupportedVersion);
    assert!(r.body.is_none());

    let mut env = RequestEnvelope::new(78, "t", v1::MetadataRequest::default());
    env.api_version = 99;
    c.send_envelope(env).await;
    let r = c.recv().await;
    assert_eq!(
        (r.correlation_id, code(r.error_code)),
        (78, ErrorCode::UnsupportedVersion)
    );

    let mut env = RequestEnvelope::new(79, "t", v1::ApiVersionsRequest::default());
    env.api_version = 99;
    c.send_envelope(env).await;
    let r = c.recv().await;
    let Some(Body::ApiVersions(v)) = r.body else {
        panic!("ApiVersions body expected")
    };
    assert_eq!(code(v.error_code), ErrorCode::UnsupportedVersion);
    assert!(
        !v.api_keys.is_empty(),
        "the list comes back so the client can retry"
    );

    // The same connection keeps working.
    let m = c.call(v1::MetadataRequest::default()).await;
    assert_eq!(m.brokers.len(), 1);
    still_serving(&mut bystander).await;
}

#[tokio::test]
async fn bad_batches_are_rejected_before_anything_is_appended() {
    let dir = temp_dir();
    let (b, mut bystander) = setup(dir.path()).await;
    let mut c = b.client().await;

    let mut wrong_crc = BytesMut::from(&batch(&[b"evil"], 1)[..]);
    let last = wrong_crc.len() - 1;
    wrong_crc[last] ^= 0x55;
    let r = c.produce("safe", 0, wrong_crc.freeze()).await;
    assert_eq!(code(r.error_code), ErrorCode::CorruptMessage);

    let big = vec![b'x'; 3000];
    let r = c.produce("safe", 0, batch(&[&big], 1)).await;
    assert_eq!(code(r.error_code), ErrorCode::MessageTooLarge);

    // A good batch followed by a bad one: neither is appended.
    let mut mixed = BytesMut::from(&batch(&[b"good"], 1)[..]);
    let mut bad = BytesMut::from(&batch(&[b"bad"], 1)[..]);
    bad[20] ^= 1;
    mixed.extend_from_slice(&bad);
    let r = c.produce("safe", 0, mixed.freeze()).await;
    assert_eq!(code(r.error_code), ErrorCode::CorruptMessage);

    // Truncated batch, bad magic, empty records.
    let whole = batch(&[b"cut"], 1);
    let r = c.produce("safe", 0, whole.slice(..whole.len() - 3)).await;
    assert_eq!(code(r.error_code), ErrorCode::CorruptMessage);
    let mut magic = BytesMut::from(&whole[..]);
    magic[16] = 1;
    let r = c.produce("safe", 0, magic.freeze()).await;
    assert_ne!(r.error_code, 0);
    let r = c.produce("safe", 0, Bytes::new()).await;
    assert_eq!(code(r.error_code), ErrorCode::InvalidRecord);

    let r = c
        .call(common::produce_req("safe", 0, batch(&[b"x"], 1), 5))
        .await;
    assert_eq!(
        code(r.responses[0].partition_responses[0].error_code),
        ErrorCode::InvalidRequiredAcks
    );
    for p in [-1, 1, i32::MAX] {
        let r = c.produce("safe", p, batch(&[b"x"], 1)).await;
        assert_eq!(
            code(r.error_code),
            ErrorCode::UnknownTopicOrPartition,
            "partition {p}"
        );
    }
    still_serving(&mut bystander).await;
}

#[tokio::test]
async fn bad_topic_names_and_partition_counts() {
    let dir = temp_dir();
    let (b, mut bystander) = setup(dir.path()).await;
    let mut c = b.client().await;
    let long = "a".repeat(300);
    for name in [
        "a/b",
        "..",
        ".",
        "../escape",
        "",
        long.as_str(),
        "white space",
        "tab\t",
        "nul\0",
        "é",
    ] {
        let r = c.create_topic(name, 1, &[]).await;
        assert_eq!(
            code(r.error_code),
            ErrorCode::InvalidTopicException,
            "{name:?}"
        );
        assert!(!r.error_message.is_empty());
    }
    assert!(!dir.path().parent().unwrap().join("escape-0").exists());
    for n in [0, -5, i32::MIN, 1_000_000] {
        let r = c.create_topic("counts", n, &[]).await;
        assert_eq!(code(r.error_code), ErrorCode::InvalidPartitions, "{n}");
    }
    let r = c
        .call(v1::CreateTopicsRequest {
            topics: vec![v1::CreatableTopic {
                name: "rf".into(),
                num_partitions: 1,
                replication_factor: 3,
                configs: vec![],
            }],
            timeout_ms: 1000,
            validate_only: false,
        })
        .await;
    assert_eq!(
        code(r.topics[0].error_code),
        ErrorCode::InvalidReplicationFactor
    );
    // '.' and '_' collide.
    c.create_topic("a.b", 1, &[]).await;
    assert_eq!(
        code(c.create_topic("a_b", 1, &[]).await.error_code),
        ErrorCode::InvalidTopicException
    );

    let m = c
        .call(v1::MetadataRequest {
            topics: vec!["../x".into()],
            all_topics: false,
            allow_auto_topic_creation: true,
        })
        .await;
    assert_eq!(
        code(m.topics[0].error_code),
        ErrorCode::InvalidTopicException
    );
    let d = c
        .call(v1::DeleteTopicsRequest {
            topic_names: vec!["..".into()],
            timeout_ms: 1,
        })
        .await;
    assert_eq!(
        code(d.responses[0].error_code),
        ErrorCode::InvalidTopicException
    );
    still_serving(&mut bystander).await;
}

#[tokio::test]
async fn fetch_and_list_offsets_out_of_range() {
    let dir = temp_dir();
    let (b, mut bystander) = setup(dir.path()).await;
    let mut c = b.client().await;
    for off in [3, -1, i64::MAX, i64::MIN] {
        let f = c.fetch("safe", 0, off, 0, 1).await;
        assert_eq!(code(f.error_code), ErrorCode::OffsetOutOfRange, "{off}");
        assert!(f.records.is_empty());
    }
    let f = c.fetch("nope", 0, 0, 0, 1).await;
    assert_eq!(code(f.error_code), ErrorCode::UnknownTopicOrPartition);
    // Extreme limits do not hurt.
    let mut req = fetch_req("safe", 0, 0, i32::MAX, i32::MAX);
    req.max_wait_ms = 50;
    req.max_bytes = 0;
    let r = c.call(req).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    let mut req = fetch_req("safe", 0, 0, -5, -5);
    req.topics[0].partitions[0].partition_max_bytes = -1;
    let r = c.call(req).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    let lo = c.list_offset("safe", 0, -7).await;
    assert_eq!(code(lo.error_code), ErrorCode::InvalidRequest);
    let d = c
        .call(v1::DeleteRecordsRequest {
            topics: vec![v1::DeleteRecordsTopic {
                name: "safe".into(),
                partitions: vec![v1::DeleteRecordsPartition {
                    partition_index: 0,
                    offset: 99,
                }],
            }],
            timeout_ms: 1,
        })
        .await;
    assert_eq!(
        code(d.topics[0].partitions[0].error_code),
        ErrorCode::OffsetOutOfRange
    );
    still_serving(&mut bystander).await;
}

#[tokio::test]
async fn idle_and_slow_loris_connections_are_closed() {
    let dir = temp_dir();
    let cfg = dir.path().join("idle.toml");
    std::fs::write(&cfg, "[server]\nconnections_max_idle_ms = 300\n").unwrap();
    let b = Broker::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    // Half a length prefix and then silence.
    let mut slow = b.client().await;
    slow.write_raw(&[0, 0]).await;
    assert!(slow.is_closed_by_peer().await);
    // An active connection keeps working.
    let mut c = b.client().await;
    assert_eq!(
        c.call(v1::MetadataRequest::default()).await.brokers.len(),
        1
    );
}

#[tokio::test]
async fn internal_topics_cannot_be_deleted_regrown_or_trimmed() {
    let dir = temp_dir();
    let (b, mut bystander) = setup(dir.path()).await;
    let mut c = b.client().await;
    let internal = "__consumer_offsets";
    let partitions = |m: v1::MetadataResponse| {
        assert_eq!(m.topics[0].error_code, 0, "{internal} exists");
        m.topics[0].partitions.len()
    };
    let meta = v1::MetadataRequest {
        topics: vec![internal.into()],
        all_topics: false,
        allow_auto_topic_creation: false,
    };
    let before = partitions(c.call(meta.clone()).await);

    let d = c
        .call(v1::DeleteTopicsRequest {
            topic_names: vec![internal.into()],
            timeout_ms: 1000,
        })
        .await;
    assert_eq!(
        code(d.responses[0].error_code),
        ErrorCode::InvalidTopicException
    );
    let g = c
        .call(v1::CreatePartitionsRequest {
            topics: vec![v1::CreatePartitionsTopic {
                name: internal.into(),
                count: before as i32 + 1,
            }],
            timeout_ms: 1000,
            validate_only: false,
        })
        .await;
    assert_eq!(
        code(g.results[0].error_code),
        ErrorCode::InvalidTopicException
    );
    let r = c
        .call(v1::DeleteRecordsRequest {
            topics: vec![v1::DeleteRecordsTopic {
                name: internal.into(),
                partitions: vec![v1::DeleteRecordsPartition {
                    partition_index: 0,
                    offset: -1,
                }],
            }],
            timeout_ms: 1000,
        })
        .await;
    assert_eq!(
        code(r.topics[0].partitions[0].error_code),
        ErrorCode::InvalidTopicException
    );

    assert_eq!(partitions(c.call(meta).await), before);
    assert!(dir.path().join(format!("{internal}-0")).is_dir());
    still_serving(&mut bystander).await;
}
