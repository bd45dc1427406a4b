//! Crash and restart: acknowledged records survive `kill -9` with the same offsets, a torn
//! tail is truncated on restart, topics/configs/producer ids survive, SIGTERM is clean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{batch, records, temp_dir, Broker, Client};
use weir_protocol::native::v1;

/// Reads every record of a partition from offset 0.
async fn read_all(c: &mut Client, topic: &str, partition: i32) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for _ in 0..10_000 {
        let f = c.fetch(topic, partition, offset, 0, 1).await;
        assert_eq!(f.error_code, 0);
        let got = records(&f.records);
        let Some(last) = got.last() else { break };
        offset = last.0 + 1;
        out.extend(got);
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_acknowledged_production_loses_nothing_acked() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut admin = b.client().await;
    admin.create_topic("crash", 2, &[]).await;

    type Acked = Vec<(i32, i64, Vec<u8>)>;
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let mut producers = Vec::new();
    for p in 0..2 {
        let addr = b.addr.clone();
        let acked = acked.clone();
        producers.push(tokio::spawn(async move {
            let mut c = Client::connect(&addr).await;
            for i in 0..100_000u32 {
                let v = format!("p{p}-{i}").into_bytes();
                let id = c
                    .send(common::produce_req("crash", p, batch(&[&v], 1), -1))
                    .await;
                // Any failure here means the broker died: stop.
                let Ok(Some(Ok(resp))) = tokio::time::timeout(
                    Duration::from_secs(10),
                    futures::StreamExt::next(&mut c.framed),
                )
                .await
                else {
                    return;
                };
                assert_eq!(resp.correlation_id, id);
                let Some(v1::response_envelope::Body::Produce(r)) = resp.body else {
                    return;
                };
                let pr = &r.responses[0].partition_responses[0];
                assert_eq!(pr.error_code, 0);
                acked.lock().unwrap().push((p, pr.base_offset, v));
            }
        }));
    }
    // Let production run until a few hundred records are acknowledged, then kill -9.
    for _ in 0..2000 {
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.kill9();
    for p in producers {
        let _ = p.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} acked before the kill",
        acked.len()
    );

    let maddr = common::free_port_addr();
    let b = Broker::start(dir.path(), &["--metrics-listen", &maddr]);
    let body =
        common::metrics_text(&maddr, |t| t.contains("weir_partitions_recovered_total")).await;
    assert!(
        common::metric(&body, "weir_partitions_recovered_total").unwrap_or(0.0) >= 1.0,
        "{body}"
    );
    let mut c = b.client().await;
    for p in 0..2 {
        let stored = read_all(&mut c, "crash", p).await;
        let stored: std::collections::HashMap<i64, Vec<u8>> = stored.into_iter().collect();
        for (_, offset, v) in acked.iter().filter(|a| a.0 == p) {
            assert_eq!(stored.get(offset), Some(v), "partition {p} offset {offset}");
        }
    }
    // And the log continues after the last stored record.
    let hw = c.fetch("crash", 0, 0, 0, 1).await.high_watermark;
    assert_eq!(
        c.produce("crash", 0, batch(&[b"after"], 1))
            .await
            .base_offset,
        hw
    );
}

/// Partitions are opened and recovered by several threads at start: every acknowledged
/// record of every partition of two topics must come back at its offset, in its own
/// partition, also when some partitions have a torn tail to cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_many_partitions_recovers_every_acked_record_in_place() {
    const TOPICS: [(&str, i32); 2] = [("many-a", 60), ("many-b", 40)];
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut admin = b.client().await;
    for (t, n) in TOPICS {
        admin.create_topic(t, n, &[]).await;
    }

    type Acked = Vec<(&'static str, i32, i64, Vec<u8>)>;
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let mut producers = Vec::new();
    for k in 0..4usize {
        let (topic, partitions) = TOPICS[k % 2];
        let addr = b.addr.clone();
        let acked = acked.clone();
        producers.push(tokio::spawn(async move {
            let mut c = Client::connect(&addr).await;
            for i in 0..100_000u32 {
                let p = (i as i32 * 7 + k as i32) % partitions;
                let v = format!("{topic}-{p}-k{k}-{i}").into_bytes();
                let id = c
                    .send(common::produce_req(topic, p, batch(&[&v], 1), -1))
                    .await;
                let Ok(Some(Ok(resp))) = tokio::time::timeout(
                    Duration::from_secs(10),
                    futures::StreamExt::next(&mut c.framed),
                )
                .await
                else {
                    return;
                };
                assert_eq!(resp.correlation_id, id);
                let Some(v1::response_envelope::Body::Produce(r)) = resp.body else {
                    return;
                };
                let pr = &r.responses[0].partition_responses[0];
                assert_eq!(pr.error_code, 0);
                acked.lock().unwrap().push((topic, p, pr.base_offset, v));
            }
        }));
    }
    for _ in 0..4000 {
        if acked.lock().unwrap().len() >= 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.kill9();
    for p in producers {
        let _ = p.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 600,
        "only {} acked before the kill",
        acked.len()
    );

    // Torn tails on every fifth partition of the first topic.
    let junk = batch(&[b"never acknowledged"], 1);
    for p in (0..TOPICS[0].1).step_by(5) {
        let seg = dir
            .path()
            .join(format!("many-a-{p}/00000000000000000000.log"));
        let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&junk[..junk.len() / 2]).unwrap();
    }

    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    for (topic, partitions) in TOPICS {
        for p in 0..partitions {
            let stored: std::collections::HashMap<i64, Vec<u8>> =
                read_all(&mut c, topic, p).await.into_iter().collect();
            let mine: Vec<_> = acked.iter().filter(|a| a.0 == topic && a.1 == p).collect();
            for (_, _, offset, v) in &mine {
                assert_eq!(stored.get(offset), Some(v), "{topic}-{p} offset {offset}");
            }
            // Nothing of another partition leaked in, and the log continues after it.
            let prefix = format!("{topic}-{p}-");
            assert!(stored.values().all(|v| v.starts_with(prefix.as_bytes())));
            let hw = c.fetch(topic, p, 0, 0, 1).await.high_watermark;
            assert_eq!(hw, stored.len() as i64, "{topic}-{p}");
            let after = c.produce(topic, p, batch(&[prefix.as_bytes()], 1)).await;
            assert_eq!(after.base_offset, hw, "{topic}-{p}");
        }
    }
}

#[tokio::test]
async fn torn_tail_is_truncated_on_restart() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("torn", 1, &[]).await;
    for i in 0..10u8 {
        c.produce("torn", 0, batch(&[&[b'r', i]], 1)).await;
    }
    b.kill9();

    // Half of a valid batch, as if the machine died mid-write, plus some junk.
    let seg = dir.path().join("torn-0/00000000000000000000.log");
    let before = std::fs::metadata(&seg).unwrap().len();
    let tail = batch(&[b"never acknowledged"], 1);
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&tail[..tail.len() / 2]).unwrap();
    f.write_all(&[0xde, 0xad, 0xbe, 0xef]).unwrap();
    drop(f);

    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    let got = read_all(&mut c, "torn", 0).await;
    let want: Vec<_> = (0..10u8).map(|i| (i64::from(i), vec![b'r', i])).collect();
    assert_eq!(got, want);
    assert!(std::fs::metadata(&seg).unwrap().len() <= before + 64);
    assert_eq!(
        c.produce("torn", 0, batch(&[b"next"], 1)).await.base_offset,
        10
    );
    let got = read_all(&mut c, "torn", 0).await;
    assert_eq!(got.last().unwrap(), &(10, b"next".to_vec()));
}

#[tokio::test]
async fn topics_configs_and_producer_ids_survive_restart() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("keep", 2, &[("retention.ms", "777")]).await;
    c.create_topic("gone", 1, &[]).await;
    c.call(v1::CreatePartitionsRequest {
        topics: vec![v1::CreatePartitionsTopic {
            name: "keep".into(),
            count: 4,
        }],
        timeout_ms: 1,
        validate_only: false,
    })
    .await;
    c.call(v1::AlterConfigsRequest {
        resources: vec![v1::AlterConfigsResource {
            resource_type: v1::ResourceType::Topic as i32,
            resource_name: "keep".into(),
            configs: vec![v1::AlterableConfig {
                name: "segment.ms".into(),
                op: 0,
                value: "5000".into(),
            }],
        }],
        validate_only: false,
    })
    .await;
    c.call(v1::DeleteTopicsRequest {
        topic_names: vec!["gone".into()],
        timeout_ms: 1,
    })
    .await;
    c.produce("keep", 3, batch(&[b"data"], 1)).await;
    let pid = c
        .call(v1::InitProducerIdRequest::default())
        .await
        .producer_id;
    let meta = c
        .call(v1::MetadataRequest {
            topics: vec![],
            all_topics: true,
            allow_auto_topic_creation: false,
        })
        .await;
    assert!(b.stop(), "SIGTERM exits cleanly");
    assert!(!dir.path().join("broker.addr").exists());

    // The graceful shutdown left checkpoints: no partition needs a recovery scan.
    let maddr = common::free_port_addr();
    let b = Broker::start(dir.path(), &["--metrics-listen", &maddr]);
    let body =
        common::metrics_text(&maddr, |t| t.contains("weir_partitions_opened_clean_total")).await;
    assert_eq!(
        common::metric(&body, "weir_partitions_opened_clean_total"),
        // 4 user partitions + the 50 of __consumer_offsets (created at first start).
        Some(54.0),
        "{body}"
    );
    assert_eq!(
        common::metric(&body, "weir_partitions_recovered_total"),
        None,
        "{body}"
    );
    let mut c = b.client().await;
    let meta2 = c
        .call(v1::MetadataRequest {
            topics: vec![],
            all_topics: true,
            allow_auto_topic_creation: false,
        })
        .await;
    assert_eq!(meta2.topics, meta.topics);
    // Ignoring the coordinator's internal __consumer_offsets.
    let user: Vec<_> = meta2.topics.iter().filter(|t| !t.is_internal).collect();
    assert_eq!(user.len(), 1);
    assert_eq!(user[0].partitions.len(), 4);
    let d = c
        .call(v1::DescribeConfigsRequest {
            resources: vec![v1::DescribeConfigsResource {
                resource_type: v1::ResourceType::Topic as i32,
                resource_name: "keep".into(),
                configuration_keys: vec!["retention.ms".into(), "segment.ms".into()],
            }],
        })
        .await;
    let vals: Vec<_> = d.results[0]
        .configs
        .iter()
        .map(|e| (e.name.clone(), e.value.clone().unwrap()))
        .collect();
    assert_eq!(
        vals,
        vec![
            ("retention.ms".to_string(), "777".to_string()),
            ("segment.ms".to_string(), "5000".to_string())
        ]
    );
    assert_eq!(
        records(&c.fetch("keep", 3, 0, 0, 1).await.records),
        vec![(0, b"data".to_vec())]
    );
    let pid2 = c
        .call(v1::InitProducerIdRequest::default())
        .await
        .producer_id;
    assert!(
        pid2 > pid,
        "producer ids are never reused ({pid2} after {pid})"
    );
}

/// The data dir's clean-shutdown marker: written by a graceful stop, it lets the next
/// start skip recovery; that start removes it before serving, so a `kill -9` afterwards
/// recovers every partition even where the partition's own checkpoint says "clean".
#[tokio::test]
async fn the_clean_shutdown_marker_is_gone_while_the_broker_runs() {
    let marker = |dir: &std::path::Path| dir.join(".weir_cleanshutdown").exists();
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    assert!(!marker(dir.path()), "a fresh dir has no marker");
    let mut c = b.client().await;
    c.create_topic("mark", 1, &[]).await;
    for i in 0..10u8 {
        c.produce("mark", 0, batch(&[&[b'a', i]], 1)).await;
    }
    assert!(b.stop(), "SIGTERM exits cleanly");
    assert!(marker(dir.path()), "a graceful stop leaves the marker");

    let maddr = common::free_port_addr();
    let b = Broker::start(dir.path(), &["--metrics-listen", &maddr]);
    assert!(!marker(dir.path()), "removed before the broker serves");
    let body =
        common::metrics_text(&maddr, |t| t.contains("weir_partitions_opened_clean_total")).await;
    assert_eq!(
        common::metric(&body, "weir_partitions_recovered_total"),
        None,
        "{body}"
    );
    let mut c = b.client().await;
    for i in 10..20u8 {
        c.produce("mark", 0, batch(&[&[b'a', i]], 1)).await;
    }
    b.kill9();

    // Make the partition's own checkpoint claim a clean close, then tear the tail.
    let part = dir.path().join("mark-0");
    let mut cp = weir_storage::log::checkpoint::Checkpoint::read(&part)
        .unwrap()
        .unwrap();
    cp.clean = true;
    cp.write(&part).unwrap();
    let seg = part.join("00000000000000000000.log");
    let tail = batch(&[b"never acknowledged"], 1);
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&tail[..tail.len() / 2]).unwrap();
    drop(f);

    let maddr = common::free_port_addr();
    let b = Broker::start(dir.path(), &["--metrics-listen", &maddr]);
    let body =
        common::metrics_text(&maddr, |t| t.contains("weir_partitions_recovered_total")).await;
    assert!(
        common::metric(&body, "weir_partitions_recovered_total").unwrap_or(0.0) >= 1.0,
        "{body}"
    );
    let mut c = b.client().await;
    let got = read_all(&mut c, "mark", 0).await;
    let want: Vec<_> = (0..20u8).map(|i| (i64::from(i), vec![b'a', i])).collect();
    assert_eq!(got, want);
    assert_eq!(
        c.produce("mark", 0, batch(&[b"next"], 1)).await.base_offset,
        20
    );
}

#[tokio::test]
async fn second_broker_on_the_same_data_dir_is_refused() {
    let dir = temp_dir();
    let _b = Broker::start(dir.path(), &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir-broker"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("locked"), "{stderr}");
    // Logs written to a pipe or file are plain text: no ANSI colour codes.
    assert!(stderr.contains("ERROR"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escape in piped logs: {stderr:?}"
    );
}

#[tokio::test]
async fn bad_config_file_is_rejected_naming_the_key() {
    let dir = temp_dir();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[log]\nretention_mss = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir-broker"))
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log.retention_mss"));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A data directory written by the pre-quorum single-node format (metadata in
/// `meta/metadata.log`; see tests/fixtures/README.md) opens with every topic, config,
/// record and committed offset, and appends continue at the next offset.
#[tokio::test]
async fn a_data_dir_from_the_previous_format_keeps_topics_records_and_offsets() {
    let dir = temp_dir();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-v1");
    copy_dir(&fixture, dir.path());
    let cfg = dir.path().join("upgrade.toml");
    std::fs::write(&cfg, "[groups]\noffsets_topic_partitions = 2\n").unwrap();
    let b = Broker::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let mut c = b.client().await;

    let mut values: Vec<Vec<u8>> = Vec::new();
    for p in 0..2 {
        let recs = read_all(&mut c, "orders", p).await;
        let offsets: Vec<i64> = recs.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (0..recs.len() as i64).collect::<Vec<_>>());
        values.extend(recs.into_iter().map(|(_, v)| v));
    }
    values.sort();
    assert_eq!(values, [b"v1", b"v2", b"v3", b"v4"].map(|v| v.to_vec()));
    let keys = read_all(&mut c, "keys", 0).await;
    assert_eq!(keys.last(), Some(&(2, b"3".to_vec())));

    let configs = c
        .call(v1::DescribeConfigsRequest {
            resources: vec![v1::DescribeConfigsResource {
                resource_type: v1::ResourceType::Topic as i32,
                resource_name: "orders".into(),
                configuration_keys: vec!["retention.ms".into()],
            }],
        })
        .await;
    let entry = &configs.results[0].configs[0];
    assert_eq!(entry.value.as_deref(), Some("604800000"));

    let groups = c
        .call(v1::DescribeGroupsRequest {
            groups: vec!["billing".into()],
            include_offsets: true,
        })
        .await;
    let mut committed: Vec<(i32, i64)> = groups.groups[0]
        .offsets
        .iter()
        .map(|o| (o.partition, o.committed_offset))
        .collect();
    committed.sort();
    assert_eq!(committed, vec![(0, 2), (1, 1)]);

    // Appends continue where the old broker stopped.
    let next = c.produce("orders", 0, batch(&[b"v5"], 1)).await;
    assert_eq!(next.error_code, 0);
    assert_eq!(
        next.base_offset,
        read_all(&mut c, "orders", 0).await.len() as i64 - 1
    );
}

/// A data directory keeps the node id it was first started with: the metadata quorum's
/// vote and log name that node, so another id is refused at start, naming the key.
#[tokio::test]
async fn a_data_dir_is_refused_to_a_different_node_id() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    assert!(b.stop());
    let props = std::fs::read_to_string(dir.path().join("meta/meta.properties")).unwrap();
    assert!(props.contains("node.id=0"), "{props}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir-broker"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--node-id", "5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.node_id is 5"), "{stderr}");
    // The same id still starts.
    let b = Broker::start(dir.path(), &[]);
    assert!(b.stop());
}
