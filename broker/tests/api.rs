//! Happy paths of every native API against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{batch, built_batch, fetch_req, produce_req, records, temp_dir, Broker, Client};
use futures::SinkExt;
use weir_protocol::native::v1::{self, response_envelope::Body};
use weir_protocol::native::ApiKey;
use weir_protocol::ErrorCode;

fn code(c: i32) -> ErrorCode {
    ErrorCode::from_i32(c)
}

#[tokio::test]
async fn api_versions_and_metadata() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    let v = c.call(v1::ApiVersionsRequest::default()).await;
    assert_eq!(v.error_code, 0);
    let keys: Vec<i32> = v.api_keys.iter().map(|k| k.api_key).collect();
    for k in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::Metadata,
        ApiKey::InitProducerId,
        ApiKey::CreatePartitions,
    ] {
        assert!(keys.contains(&i32::from(k.code())), "{k}");
    }

    c.create_topic("m", 3, &[]).await;
    let m = c
        .call(v1::MetadataRequest {
            topics: vec![],
            all_topics: true,
            allow_auto_topic_creation: false,
        })
        .await;
    assert_eq!(m.brokers.len(), 1);
    assert_eq!(
        format!("{}:{}", m.brokers[0].host, m.brokers[0].port),
        b.addr
    );
    assert_eq!(m.controller_id, 0);
    // The coordinator's internal __consumer_offsets is listed too, marked internal.
    let user: Vec<_> = m.topics.iter().filter(|t| !t.is_internal).collect();
    assert_eq!(user.len(), 1);
    let t = user[0];
    assert_eq!(t.name, "m");
    assert_eq!(t.topic_id.len(), 16);
    assert_eq!(t.partitions.len(), 3);
    for (i, p) in t.partitions.iter().enumerate() {
        assert_eq!(p.partition_index, i as i32);
        assert_eq!(p.leader_id, 0);
        assert_eq!(p.leader_epoch, 0);
        assert_eq!(p.replica_nodes, vec![0]);
        assert_eq!(p.isr_nodes, vec![0]);
        let stats = (p.log_start_offset, p.log_end_offset, p.high_watermark);
        assert_eq!(stats, (Some(0), Some(0), Some(0)), "empty log");
        assert_eq!(p.size_bytes, Some(0));
    }
    let m = c
        .call(v1::MetadataRequest {
            topics: vec!["nope".into()],
            all_topics: false,
            allow_auto_topic_creation: false,
        })
        .await;
    assert_eq!(
        code(m.topics[0].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
    let m = c.call(v1::MetadataRequest::default()).await;
    assert!(
        m.topics.is_empty(),
        "empty list and not all_topics = brokers only"
    );
}

#[tokio::test]
async fn produce_fetch_list_offsets_delete_records() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    let t = c.create_topic("events", 2, &[]).await;
    assert_eq!(t.error_code, 0, "{}", t.error_message);
    assert_eq!(t.num_partitions, 2);

    let r0 = c.produce("events", 0, batch(&[b"a", b"b"], 1000)).await;
    assert_eq!((r0.error_code, r0.base_offset), (0, 0));
    let r1 = c.produce("events", 0, batch(&[b"c"], 2000)).await;
    assert_eq!(
        (r1.error_code, r1.base_offset, r1.log_append_time_ms),
        (0, 2, -1)
    );
    let r2 = c
        .produce("events", 0, batch(&[b"d", b"e", b"f"], 3000))
        .await;
    assert_eq!(r2.base_offset, 3);
    let other = c.produce("events", 1, batch(&[b"x"], 1000)).await;
    assert_eq!(other.base_offset, 0);

    let f = c.fetch("events", 0, 0, 0, 1).await;
    assert_eq!(f.error_code, 0);
    assert_eq!(f.high_watermark, 6);
    assert_eq!(f.last_stable_offset, 6);
    assert_eq!(f.log_start_offset, 0);
    let got: Vec<_> = records(&f.records)
        .into_iter()
        .map(|(o, v)| (o, String::from_utf8(v).unwrap()))
        .collect();
    let want: Vec<_> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v.to_string()))
        .collect();
    assert_eq!(got, want);

    // Middle of a batch: that whole batch comes back.
    let f = c.fetch("events", 0, 4, 0, 1).await;
    assert_eq!(records(&f.records).first().map(|r| r.0), Some(3));
    // At the high watermark: empty, no error.
    let f = c.fetch("events", 0, 6, 0, 1).await;
    assert_eq!((f.error_code, f.records.len()), (0, 0));

    assert_eq!(c.list_offset("events", 0, -2).await.offset, 0);
    assert_eq!(c.list_offset("events", 0, -1).await.offset, 6);
    let by_ts = c.list_offset("events", 0, 1500).await;
    assert_eq!((by_ts.offset, by_ts.timestamp), (2, 2000));
    let none = c.list_offset("events", 0, 9999).await;
    assert_eq!((none.error_code, none.offset, none.timestamp), (0, -1, -1));

    let d = c
        .call(v1::DeleteRecordsRequest {
            topics: vec![v1::DeleteRecordsTopic {
                name: "events".into(),
                partitions: vec![v1::DeleteRecordsPartition {
                    partition_index: 0,
                    offset: 2,
                }],
            }],
            timeout_ms: 1000,
        })
        .await;
    let p = &d.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (0, 2));
    assert_eq!(c.list_offset("events", 0, -2).await.offset, 2);
    let f = c.fetch("events", 0, 0, 0, 1).await;
    assert_eq!(code(f.error_code), ErrorCode::OffsetOutOfRange);
    let f = c.fetch("events", 0, 2, 0, 1).await;
    assert_eq!(f.log_start_offset, 2);
    assert_eq!(
        records(&f.records).first().map(|r| r.1.clone()),
        Some(b"c".to_vec())
    );

    // Metadata carries each partition's log offsets and size.
    let m = c
        .call(v1::MetadataRequest {
            topics: vec!["events".into()],
            ..Default::default()
        })
        .await;
    let p = &m.topics[0].partitions;
    let stats: Vec<_> = p
        .iter()
        .map(|p| (p.log_start_offset, p.log_end_offset, p.high_watermark))
        .collect();
    assert_eq!(
        stats,
        vec![(Some(2), Some(6), Some(6)), (Some(0), Some(1), Some(1))]
    );
    let sizes: Vec<u64> = p.iter().map(|p| p.size_bytes.unwrap()).collect();
    assert!(sizes[0] > sizes[1] && sizes[1] > 0, "{sizes:?}");
}

#[tokio::test]
async fn list_offsets_by_timestamp_names_the_exact_record_in_a_compressed_batch() {
    use weir_protocol::batch::{BatchBuilder, BatchOptions, Compression, NewRecord};
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("ts", 1, &[]).await;
    let mut builder = BatchBuilder::new(BatchOptions::new(Compression::Gzip));
    for ts in [1000, 1100, 1200, 1300] {
        builder.push(&NewRecord::new(ts, None, Some(b"v"))).unwrap();
    }
    let r = c.produce("ts", 0, builder.build().unwrap().into()).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));

    let at = c.list_offset("ts", 0, 1150).await;
    assert_eq!((at.error_code, at.offset, at.timestamp), (0, 2, 1200));
    let first = c.list_offset("ts", 0, 0).await;
    assert_eq!((first.offset, first.timestamp), (0, 1000));
    let last = c.list_offset("ts", 0, 1300).await;
    assert_eq!((last.offset, last.timestamp), (3, 1300));
    let beyond = c.list_offset("ts", 0, 1301).await;
    assert_eq!(
        (beyond.error_code, beyond.offset, beyond.timestamp),
        (0, -1, -1)
    );
}

#[tokio::test]
async fn fetch_respects_max_bytes_but_returns_a_first_large_batch() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("big", 1, &[]).await;
    let v = vec![7u8; 5000];
    for _ in 0..3 {
        c.produce("big", 0, batch(&[&v], 1)).await;
    }
    let mut req = fetch_req("big", 0, 0, 0, 1);
    req.topics[0].partitions[0].partition_max_bytes = 100;
    let r = c.call(req).await;
    assert_eq!(
        records(&r.responses[0].partitions[0].records).len(),
        1,
        "KIP-74: one whole batch"
    );
    let mut req = fetch_req("big", 0, 0, 0, 1);
    req.max_bytes = 11_000;
    let r = c.call(req).await;
    assert_eq!(records(&r.responses[0].partitions[0].records).len(), 2);
}

#[tokio::test]
async fn configs_describe_and_alter() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    let t = c
        .create_topic(
            "cfg",
            1,
            &[("retention.ms", "1234"), ("cleanup.policy", "compact")],
        )
        .await;
    assert_eq!(t.error_code, 0, "{}", t.error_message);

    let describe = |keys: Vec<String>| v1::DescribeConfigsRequest {
        resources: vec![v1::DescribeConfigsResource {
            resource_type: v1::ResourceType::Topic as i32,
            resource_name: "cfg".into(),
            configuration_keys: keys,
        }],
    };
    let d = c.call(describe(vec![])).await;
    let r = &d.results[0];
    assert_eq!(r.error_code, 0);
    let get = |name: &str| r.configs.iter().find(|e| e.name == name).cloned().unwrap();
    assert_eq!(get("retention.ms").value.as_deref(), Some("1234"));
    assert_eq!(
        get("retention.ms").config_source,
        v1::ConfigSource::DynamicTopicConfig as i32
    );
    assert_eq!(get("cleanup.policy").value.as_deref(), Some("compact"));
    assert!(get("segment.bytes").is_default);
    assert!(r.configs.len() >= 10);

    let a = c
        .call(v1::AlterConfigsRequest {
            resources: vec![v1::AlterConfigsResource {
                resource_type: v1::ResourceType::Topic as i32,
                resource_name: "cfg".into(),
                configs: vec![
                    v1::AlterableConfig {
                        name: "segment.ms".into(),
                        op: v1::AlterConfigOp::Set as i32,
                        value: "60000".into(),
                    },
                    v1::AlterableConfig {
                        name: "retention.ms".into(),
                        op: v1::AlterConfigOp::Delete as i32,
                        value: String::new(),
                    },
                ],
            }],
            validate_only: false,
        })
        .await;
    assert_eq!(
        a.responses[0].error_code, 0,
        "{}",
        a.responses[0].error_message
    );
    let d = c
        .call(describe(vec!["segment.ms".into(), "retention.ms".into()]))
        .await;
    let cfgs = &d.results[0].configs;
    assert_eq!(cfgs.len(), 2);
    let seg = cfgs.iter().find(|e| e.name == "segment.ms").unwrap();
    assert_eq!(seg.value.as_deref(), Some("60000"));
    let ret = cfgs.iter().find(|e| e.name == "retention.ms").unwrap();
    assert_eq!(ret.value.as_deref(), Some("604800000"));
    assert!(ret.is_default);

    // Bad key and bad value: rejected, naming the key; nothing changes.
    for (k, v) in [("retention.mss", "1"), ("segment.bytes", "banana")] {
        let a = c
            .call(v1::AlterConfigsRequest {
                resources: vec![v1::AlterConfigsResource {
                    resource_type: v1::ResourceType::Topic as i32,
                    resource_name: "cfg".into(),
                    configs: vec![v1::AlterableConfig {
                        name: k.into(),
                        op: 0,
                        value: v.into(),
                    }],
                }],
                validate_only: false,
            })
            .await;
        assert_eq!(code(a.responses[0].error_code), ErrorCode::InvalidConfig);
        assert!(
            a.responses[0].error_message.contains(k),
            "{}",
            a.responses[0].error_message
        );
    }
    let bad = c.create_topic("cfg2", 1, &[("no.such.key", "1")]).await;
    assert_eq!(code(bad.error_code), ErrorCode::InvalidConfig);
    assert!(bad.error_message.contains("no.such.key"));

    let d = c
        .call(v1::DescribeConfigsRequest {
            resources: vec![v1::DescribeConfigsResource {
                resource_type: v1::ResourceType::Broker as i32,
                resource_name: "0".into(),
                configuration_keys: vec!["max.message.bytes".into()],
            }],
        })
        .await;
    assert_eq!(d.results[0].configs[0].value.as_deref(), Some("1048588"));
    assert!(d.results[0].configs[0].read_only);
}

#[tokio::test]
async fn create_partitions_and_delete_topics() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("grow", 1, &[]).await;
    let dup = c.create_topic("grow", 1, &[]).await;
    assert_eq!(code(dup.error_code), ErrorCode::TopicAlreadyExists);
    c.produce("grow", 0, batch(&[b"keep"], 1)).await;

    let grow = |name: &str, count: i32| v1::CreatePartitionsRequest {
        topics: vec![v1::CreatePartitionsTopic {
            name: name.into(),
            count,
        }],
        timeout_ms: 1000,
        validate_only: false,
    };
    let r = c.call(grow("grow", 3)).await;
    assert_eq!(r.results[0].error_code, 0, "{}", r.results[0].error_message);
    let r = c.call(grow("grow", 2)).await;
    assert_eq!(code(r.results[0].error_code), ErrorCode::InvalidPartitions);
    let r = c.call(grow("missing", 2)).await;
    assert_eq!(
        code(r.results[0].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
    assert_eq!(
        c.produce("grow", 2, batch(&[b"new"], 1)).await.base_offset,
        0
    );
    assert_eq!(records(&c.fetch("grow", 0, 0, 0, 1).await.records).len(), 1);
    assert!(dir.path().join("grow-2").is_dir());

    let d = c
        .call(v1::DeleteTopicsRequest {
            topic_names: vec!["grow".into(), "missing".into()],
            timeout_ms: 1000,
        })
        .await;
    assert_eq!(d.responses[0].error_code, 0);
    assert_eq!(
        code(d.responses[1].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
    assert!(!dir.path().join("grow-0").exists());
    let p = c.produce("grow", 0, batch(&[b"x"], 1)).await;
    assert_eq!(code(p.error_code), ErrorCode::UnknownTopicOrPartition);

    // Recreated under the same name: empty.
    c.create_topic("grow", 1, &[]).await;
    let f = c.fetch("grow", 0, 0, 0, 1).await;
    assert_eq!((f.error_code, f.high_watermark), (0, 0));
}

#[tokio::test]
async fn init_producer_id_allocates_and_bumps() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    let a = c.call(v1::InitProducerIdRequest::default()).await;
    let b2 = c.call(v1::InitProducerIdRequest::default()).await;
    assert_eq!((a.error_code, a.producer_epoch), (0, 0));
    assert_ne!(a.producer_id, b2.producer_id);
    let bumped = c
        .call(v1::InitProducerIdRequest {
            producer_id: Some(a.producer_id),
            producer_epoch: Some(a.producer_epoch),
            ..Default::default()
        })
        .await;
    assert_eq!(
        (bumped.producer_id, bumped.producer_epoch),
        (a.producer_id, 1)
    );
    let bogus = c
        .call(v1::InitProducerIdRequest {
            producer_id: Some(1 << 40),
            producer_epoch: Some(0),
            ..Default::default()
        })
        .await;
    assert_ne!(bogus.error_code, 0);
    let t1 = c
        .call(v1::InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            ..Default::default()
        })
        .await;
    let t2 = c
        .call(v1::InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(t1.producer_id, t2.producer_id);
    assert_eq!(t2.producer_epoch, t1.producer_epoch + 1);
}

/// A broker with topic "lp", a consumer whose 60 s long poll on it is parked (60 s is
/// longer than `recv`'s 30 s, so only something else than the deadline can answer it),
/// the admin client and the poll's correlation id.
async fn parked_long_poll() -> (tempfile::TempDir, Broker, Client, Client, i32) {
    let dir = temp_dir();
    let maddr = common::free_port_addr();
    let b = Broker::start(dir.path(), &["--metrics-listen", &maddr]);
    let mut admin = b.client().await;
    admin.create_topic("lp", 1, &[]).await;
    let mut consumer = b.client().await;
    let id = consumer.send(fetch_req("lp", 0, 0, 60_000, 1)).await;
    common::wait_parked_fetches(&maddr, 1).await;
    (dir, b, admin, consumer, id)
}

/// The single partition of a fetch response.
fn only_partition(resp: v1::ResponseEnvelope, id: i32) -> v1::FetchPartitionData {
    assert_eq!(resp.correlation_id, id);
    let Some(Body::Fetch(f)) = resp.body else {
        panic!("not a fetch response")
    };
    f.responses[0].partitions[0].clone()
}

#[tokio::test]
async fn long_poll_fetch_wakes_when_data_arrives() {
    let (_dir, _b, mut admin, mut consumer, id) = parked_long_poll().await;
    admin.produce("lp", 0, batch(&[b"wake"], 1)).await;
    let p = only_partition(consumer.recv().await, id);
    assert_eq!(records(&p.records), vec![(0, b"wake".to_vec())]);
}

#[tokio::test]
async fn graceful_shutdown_answers_a_parked_long_poll() {
    let (_dir, b, _admin, mut consumer, id) = parked_long_poll().await;
    // SIGTERM: the parked fetch must be answered (empty) rather than cut off when the
    // drain grace ends.
    b.terminate();
    let p = only_partition(consumer.recv().await, id);
    assert_eq!(p.error_code, 0);
    assert!(p.records.is_empty());
    assert!(b.stop(), "clean exit after the drain");
}

#[tokio::test]
async fn pipelined_responses_keep_request_order_and_acks0_is_silent() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("pipe", 1, &[]).await;
    // A long poll at the head must not let later responses overtake it.
    let head = c.send(fetch_req("pipe", 0, 0, 300, 1)).await;
    let silent = c
        .send(produce_req("pipe", 0, batch(&[b"zero"], 1), 0))
        .await;
    let mut ids = vec![head];
    for i in 0..40 {
        ids.push(if i % 2 == 0 {
            c.send(v1::MetadataRequest::default()).await
        } else {
            c.send(produce_req("pipe", 0, batch(&[b"p"], 1), 1)).await
        });
    }
    for want in ids {
        let r = c.recv().await;
        assert_ne!(r.correlation_id, silent, "acks=0 must not be answered");
        assert_eq!(r.correlation_id, want);
    }
    let f = c.fetch("pipe", 0, 0, 0, 1).await;
    assert_eq!(f.high_watermark, 21, "acks=0 record plus 20 acked ones");
}

/// Records in the `i`th request of the pipelining test: sizes vary so the requests take
/// different times to validate and append, which is what lets one overtake another.
fn pipelined_values(i: usize) -> Vec<Vec<u8>> {
    (0..i % 7 + 1)
        .map(|r| vec![r as u8; 100 * (i % 5 + 1)])
        .collect()
}

#[tokio::test]
async fn pipelined_produces_append_in_arrival_order() {
    const REQUESTS: usize = 200;
    // Every `CORRUPT`th request's partition-0 batch is rejected (its turn is given up
    // without appending); every `BOTH`th request also writes partition 1 (two appends
    // share one turn).
    const CORRUPT: usize = 10;
    const BOTH: usize = 3;
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("order", 2, &[]).await;
    // One write for all of them, so the broker reads them as fast as it can and many are
    // in flight at once.
    for i in 0..REQUESTS {
        let values = pipelined_values(i);
        let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let good = batch(&values, 1);
        let mut first = good.to_vec();
        if i % CORRUPT == CORRUPT - 1 {
            let last = first.len() - 1;
            first[last] ^= 0xff;
        }
        let mut req = produce_req("order", 0, first.into(), 1);
        if i % BOTH == 0 {
            req.topic_data[0]
                .partition_data
                .push(v1::PartitionProduceData {
                    index: 1,
                    records: good,
                });
        }
        let id = i32::try_from(i).unwrap();
        c.framed
            .feed(v1::RequestEnvelope::new(id, "test", req))
            .await
            .unwrap();
    }
    c.framed.flush().await.unwrap();
    let mut next_offset = [0, 0];
    for i in 0..REQUESTS {
        let r = c.recv().await;
        assert_eq!(r.correlation_id, i32::try_from(i).unwrap());
        let Some(Body::Produce(p)) = r.body else {
            panic!("not a produce response: {r:?}");
        };
        let records = pipelined_values(i).len() as i64;
        let parts = &p.responses[0].partition_responses;
        assert_eq!(parts.len(), if i % BOTH == 0 { 2 } else { 1 });
        for part in parts {
            let partition = usize::try_from(part.index).unwrap();
            if partition == 0 && i % CORRUPT == CORRUPT - 1 {
                assert_eq!(code(part.error_code), ErrorCode::CorruptMessage);
                continue;
            }
            assert_eq!(
                code(part.error_code),
                ErrorCode::None,
                "{}",
                part.error_message
            );
            assert_eq!(
                part.base_offset, next_offset[partition],
                "request {i} was not appended to partition {partition} in arrival order"
            );
            next_offset[partition] += records;
        }
    }
    assert!(next_offset[0] > 0 && next_offset[1] > 0);
}

#[tokio::test]
async fn metrics_endpoint_serves_prometheus_text() {
    let maddr = common::free_port_addr();
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &["--metrics-listen", &maddr]);
    let mut c = b.client().await;
    c.create_topic("met", 1, &[]).await;
    c.produce("met", 0, batch(&[b"m"], 1)).await;
    let _ = c.fetch("met", 0, 0, 0, 1).await;
    let body = common::metrics_text(&maddr, |b| {
        b.contains("weir_partition_high_watermark{topic=\"met\"")
    })
    .await;
    for (series, want) in [
        ("weir_produced_records_total{topic=\"met\"}", 1.0),
        ("weir_requests_total{api=\"Produce\"}", 1.0),
        (
            "weir_partition_high_watermark{topic=\"met\",partition=\"0\"}",
            1.0,
        ),
        (
            "weir_partition_log_end_offset{topic=\"met\",partition=\"0\"}",
            1.0,
        ),
        (
            "weir_partition_segments{topic=\"met\",partition=\"0\"}",
            1.0,
        ),
        ("weir_connections_open", 1.0),
        ("weir_build_info{version=\"0.1.0\",commit=", 1.0),
        // A single node leads its own metadata quorum.
        ("weir_metadata_quorum_leader", 0.0),
    ] {
        let got = body
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok());
        assert_eq!(got, Some(want), "{series} in\n{body}");
    }
    // Membership, the leader's blank entry, __consumer_offsets and "met" at least.
    let applied = common::metric(&body, "weir_metadata_quorum_applied_index").unwrap();
    assert!(applied >= 3.0, "{body}");
    assert!(common::metric(&body, "weir_metadata_quorum_term").unwrap() >= 1.0);
    let fetched = common::metric(&body, "weir_fetched_bytes_total{topic=\"met\"}").unwrap();
    assert!(fetched > 0.0, "{body}");
    for family in [
        "weir_request_duration_seconds_bucket{api=\"Produce\",le=\"0.0001\"}",
        "weir_process_resident_memory_bytes ",
        "weir_process_open_fds ",
        "weir_process_uptime_seconds ",
        "weir_log_flush_duration_seconds_bucket",
        "# TYPE weir_consumer_group_lag gauge",
    ] {
        assert!(body.contains(family), "{family} in\n{body}");
    }
}

/// Appends and tail reads of a warm partition run on the request's own thread (no hand-off
/// to a blocking thread); the first append of a leader epoch, which writes the epoch cache,
/// and a segment roll still go to a blocking thread. Either way the data is the same.
#[tokio::test]
async fn light_appends_and_tail_reads_stay_on_the_async_thread() {
    let maddr = common::free_port_addr();
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &["--metrics-listen", &maddr]);
    let mut c = b.client().await;
    // Small segments: some of the appends below roll.
    c.create_topic("light", 1, &[("segment.bytes", "2048")])
        .await;
    let mut want = Vec::new();
    for i in 0..40u32 {
        let v = format!("value-{i:04}-{}", "x".repeat(100));
        let r = c
            .produce("light", 0, batch(&[v.as_bytes()], 1_000 + i64::from(i)))
            .await;
        assert_eq!((r.error_code, r.base_offset), (0, i64::from(i)));
        want.push((i64::from(i), v.into_bytes()));
    }
    let mut got = Vec::new();
    while got.len() < want.len() {
        let from = got.len() as i64;
        let d = c.fetch("light", 0, from, 0, 1).await;
        assert_eq!(d.error_code, 0);
        let recs = records(&d.records);
        assert!(!recs.is_empty(), "nothing at {from}");
        got.extend(recs.into_iter().filter(|(o, _)| *o >= from));
    }
    assert_eq!(got, want);
    const ASYNC_APPEND: &str = "weir_storage_ops_total{op=\"append\",thread=\"async\"}";
    const BLOCKING_APPEND: &str = "weir_storage_ops_total{op=\"append\",thread=\"blocking\"}";
    const ASYNC_READ: &str = "weir_storage_ops_total{op=\"fetch_read\",thread=\"async\"}";
    let body = common::metrics_text(&maddr, |t| {
        common::metric(t, ASYNC_APPEND).is_some_and(|n| n > 0.0)
    })
    .await;
    let light = common::metric(&body, ASYNC_APPEND).unwrap_or(0.0);
    let blocking = common::metric(&body, BLOCKING_APPEND).unwrap_or(0.0);
    // Rolls every few appends and the epoch's first append: blocking; the rest: light.
    assert!(blocking >= 2.0, "{blocking} blocking appends\n{body}");
    assert!(light >= 20.0, "{light} light appends\n{body}");
    // Cached reads need RWF_NOWAIT from the file system (tmpfs on old kernels has none:
    // every fetch then reads on a blocking thread, which is correct, just slower).
    if weir_storage::testkit::nowait_reads_supported(dir.path()) {
        assert!(
            common::metric(&body, ASYNC_READ).unwrap_or(0.0) >= 1.0,
            "{body}"
        );
    }
}

/// A fetch served on the async thread copies at most 1 MiB (plus one whole batch) however
/// much the request allows; the reader fetches again and gets everything, in order.
/// (Zero copy is off here: with it, such reads are sent from the file and not copied.)
#[tokio::test]
async fn an_async_fetch_copies_a_bounded_amount() {
    let dir = temp_dir();
    let cfg = dir.path().join("copy.toml");
    std::fs::write(&cfg, "[server]\nfetch_zero_copy = false\n").unwrap();
    let b = Broker::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let mut c = b.client().await;
    c.create_topic("bounded", 1, &[]).await;
    let big = vec![b'v'; 100 * 1024];
    for i in 0..30i64 {
        let r = c.produce("bounded", 0, batch(&[&big], 1_000 + i)).await;
        assert_eq!((r.error_code, r.base_offset), (0, i));
    }
    // The request allows 10 MiB for the partition (common::fetch_req).
    let first = c.fetch("bounded", 0, 0, 0, 1).await;
    assert_eq!(first.error_code, 0);
    if weir_storage::testkit::nowait_reads_supported(dir.path()) {
        let n = first.records.len();
        assert!(
            n > 0 && n <= (1 << 20) + big.len() + 1024,
            "{n} bytes in one async fetch"
        );
    }
    let mut next = 0i64;
    while next < 30 {
        let d = c.fetch("bounded", 0, next, 0, 1).await;
        assert_eq!(d.error_code, 0);
        let recs = records(&d.records);
        assert!(!recs.is_empty(), "nothing at {next}");
        for (o, v) in recs {
            if o < next {
                continue;
            }
            assert_eq!((o, v.len()), (next, big.len()));
            next += 1;
        }
    }
}

/// With zero copy (the default), a consumer's large read of cached data is sent from the
/// segment file (`sendfile`) inside an ordinary frame: every record arrives, in order,
/// next to small partitions that are copied, across several topics in one response.
#[tokio::test]
async fn large_fetches_are_sent_from_the_page_cache_intact() {
    use v1::{FetchPartition, FetchRequest, FetchTopic};
    const SENDFILE: &str = "weir_fetch_bytes_total{path=\"sendfile\"}";
    let maddr = common::free_port_addr();
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &["--metrics-listen", &maddr]);
    let mut c = b.client().await;
    c.create_topic("zc-big", 2, &[]).await;
    c.create_topic("zc-small", 1, &[]).await;
    let mut want: Vec<Vec<(i64, Vec<u8>)>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for i in 0..40i64 {
        // 40 x ~60 KiB per big partition, several records per batch.
        let vals: Vec<Vec<u8>> = (0..3)
            .map(|k| {
                format!("{i:04}-{k}-{}", "z".repeat(20_000 + (i as usize * 7) % 500)).into_bytes()
            })
            .collect();
        for p in 0..2 {
            let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
            let r = c.produce("zc-big", p, batch(&refs, 1_000 + i)).await;
            assert_eq!((r.error_code, r.base_offset), (0, i * 3));
            for (k, v) in vals.iter().enumerate() {
                want[p as usize].push((i * 3 + k as i64, v.clone()));
            }
        }
        let v = format!("small-{i}").into_bytes();
        assert_eq!(
            c.produce("zc-small", 0, batch(&[&v], 1_000 + i))
                .await
                .error_code,
            0
        );
        want[2].push((i, v));
    }
    let mut got: Vec<Vec<(i64, Vec<u8>)>> = vec![Vec::new(), Vec::new(), Vec::new()];
    let mut rounds = 0;
    while got.iter().zip(&want).any(|(g, w)| g.len() < w.len()) {
        rounds += 1;
        assert!(
            rounds < 100,
            "no progress: {:?}",
            got.iter().map(Vec::len).collect::<Vec<_>>()
        );
        let part = |index: i32, from: usize| FetchPartition {
            partition: index,
            fetch_offset: from as i64,
            partition_max_bytes: 1 << 20,
            current_leader_epoch: None,
        };
        let req = FetchRequest {
            replica_id: None,
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 50 << 20,
            isolation_level: 0,
            topics: vec![
                FetchTopic {
                    topic: "zc-big".into(),
                    partitions: vec![part(0, got[0].len()), part(1, got[1].len())],
                },
                FetchTopic {
                    topic: "zc-small".into(),
                    partitions: vec![part(0, got[2].len())],
                },
            ],
        };
        let resp = c.call(req).await;
        let datas: Vec<_> = resp
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter())
            .collect();
        assert_eq!(datas.len(), 3);
        for (slot, d) in datas.into_iter().enumerate() {
            assert_eq!(d.error_code, 0);
            let from = got[slot].len() as i64;
            got[slot].extend(records(&d.records).into_iter().filter(|(o, _)| *o >= from));
        }
    }
    assert_eq!(got, want);
    if weir_storage::testkit::zero_copy_supported(dir.path()) {
        let body = common::metrics_text(&maddr, |t| {
            common::metric(t, SENDFILE).is_some_and(|n| n > 0.0)
        })
        .await;
        let sent = common::metric(&body, SENDFILE).unwrap_or(0.0);
        assert!(
            sent >= 2.0 * 1024.0 * 1024.0,
            "{sent} bytes sent from files\n{body}"
        );
    }
}

#[tokio::test]
async fn metrics_can_be_disabled() {
    let maddr = common::free_port_addr();
    let dir = temp_dir();
    let cfg = dir.path().join("nometrics.toml");
    std::fs::write(&cfg, "[metrics]\nenabled = false\n").unwrap();
    let b = Broker::start(
        dir.path(),
        &[
            "--metrics-listen",
            &maddr,
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let mut c = b.client().await;
    c.create_topic("quiet", 1, &[]).await;
    assert_eq!(c.produce("quiet", 0, batch(&[b"q"], 1)).await.error_code, 0);
    assert!(
        std::net::TcpStream::connect(&maddr).is_err(),
        "listener is off"
    );
    assert!(!dir.path().join("metrics.addr").exists());
}

#[tokio::test]
async fn acks_all_is_refused_when_min_insync_replicas_exceeds_the_one_replica() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("isr2", 1, &[("min.insync.replicas", "2")])
        .await;
    let r = c.call(produce_req("isr2", 0, batch(&[b"a"], 1), -1)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(code(p.error_code), ErrorCode::NotEnoughReplicas);
    assert!(p.error_message.contains("min.insync.replicas"), "{p:?}");
    // acks=1 does not need the other replica; the refused batch was never appended.
    let r = c.call(produce_req("isr2", 0, batch(&[b"b"], 1), 1)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    let f = c.fetch("isr2", 0, 0, 0, 1).await;
    assert_eq!(records(&f.records), vec![(0, b"b".to_vec())]);
}

#[tokio::test]
async fn log_append_time_topics_stamp_batches_with_the_broker_time() {
    use weir_protocol::batch::{BatchIter, TimestampType};
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    let t = c
        .create_topic("lat", 1, &[("message.timestamp.type", "LogAppendTime")])
        .await;
    assert_eq!(t.error_code, 0, "{}", t.error_message);
    let p = c.produce("lat", 0, batch(&[b"a", b"b"], 7)).await;
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    let stamped = p.log_append_time_ms;
    assert!(
        stamped > 7,
        "the broker's clock replaces the producer's: {stamped}"
    );

    let f = c.fetch("lat", 0, 0, 0, 1).await;
    let headers: Vec<_> = BatchIter::new(&f.records, true)
        .map(|b| b.unwrap().0)
        .collect();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(headers[0].max_timestamp, stamped);
    // Lookups by time see the broker's time, not the producer's.
    assert_eq!(c.list_offset("lat", 0, 8).await.offset, 0);
    assert_eq!(c.list_offset("lat", 0, stamped + 1).await.offset, -1);
}

/// Every record of partition 0 of `topic`, following batch ends (a cleaned segment may hold
/// only an empty batch, kept so the segment's end offset survives).
async fn all_records(c: &mut common::Client, topic: &str) -> Vec<(i64, Vec<u8>)> {
    use weir_protocol::batch::BatchIter;
    let mut out = Vec::new();
    let mut offset = 0;
    for _ in 0..1000 {
        let f = c.fetch(topic, 0, offset, 0, 1).await;
        assert_eq!(f.error_code, 0);
        let Some(next) = BatchIter::new(&f.records, true)
            .map(|b| b.unwrap().0.next_offset())
            .last()
        else {
            break;
        };
        out.extend(records(&f.records));
        offset = next;
    }
    out
}

#[tokio::test]
async fn retention_and_the_cleaner_run_on_their_schedule() {
    use weir_protocol::batch::Compression;
    let dir = temp_dir();
    let cfg = dir.path().join("fast.toml");
    std::fs::write(
        &cfg,
        "[log]\nretention_check_interval_ms = 50\ncleaner_backoff_ms = 50\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let b = Broker::start(&data, &["--config", cfg.to_str().unwrap()]);
    let mut c = b.client().await;
    let small = ("segment.bytes", "1024");
    c.create_topic("old", 1, &[small, ("retention.ms", "1000")])
        .await;
    c.create_topic("keys", 1, &[small, ("cleanup.policy", "compact")])
        .await;
    for i in 0..40u8 {
        // Timestamp 1: long past retention.ms, so every closed segment qualifies.
        assert_eq!(
            c.produce("old", 0, batch(&[&[i; 40]], 1)).await.error_code,
            0
        );
        let kv = built_batch(&[(Some(b"k"), Some(&[i; 40]))], None, Compression::None);
        assert_eq!(c.produce("keys", 0, kv).await.error_code, 0);
    }

    // Nothing but the schedule deletes or cleans: poll, bounded.
    let (mut start, mut kept) = (0, Vec::new());
    for _ in 0..400 {
        start = c.list_offset("old", 0, -2).await.offset;
        kept = all_records(&mut c, "keys").await;
        if start > 0 && kept.len() < 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(start > 0, "retention moved the log start");
    assert!(kept.len() < 40, "the cleaner dropped superseded values");
    assert_eq!(
        kept.last(),
        Some(&(39, vec![39u8; 40])),
        "the newest value stays"
    );
}

#[tokio::test]
async fn offset_for_leader_epoch_answers_from_the_epoch_cache() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    assert_eq!(c.create_topic("epochs", 1, &[]).await.error_code, 0);
    let ask = |epoch: i32, current: Option<i32>| v1::OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: vec![v1::OffsetForLeaderTopic {
            name: "epochs".into(),
            partitions: vec![v1::OffsetForLeaderPartition {
                partition_index: 0,
                current_leader_epoch: current,
                leader_epoch: epoch,
            }],
        }],
    };
    // Nothing written yet: no epoch is known.
    let r = c.call(ask(0, None)).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, -1, -1));

    c.produce("epochs", 0, batch(&[b"a", b"b", b"c"], 1000))
        .await;
    let r = c.call(ask(0, Some(0))).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 0, 3));
    // A later epoch than the log's is unknown; a newer current epoch than the broker's is
    // UNKNOWN_LEADER_EPOCH; an unknown topic says so.
    let r = c.call(ask(4, None)).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.leader_epoch, p.end_offset), (-1, -1));
    let r = c.call(ask(0, Some(9))).await;
    assert_eq!(
        code(r.topics[0].partitions[0].error_code),
        ErrorCode::UnknownLeaderEpoch
    );
    let mut unknown = ask(0, None);
    unknown.topics[0].name = "nope".into();
    let r = c.call(unknown).await;
    assert_eq!(
        code(r.topics[0].partitions[0].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
}
