//! Real Kafka clients against the Kafka listener of a real `weir-broker`: kcat (librdkafka
//! 2.0.2 on Debian bookworm), confluent-kafka (a current librdkafka), kafka-python,
//! aiokafka and KafkaJS, plus cross-protocol checks against the native listener. One broker for the whole binary; each
//! scenario uses its own topics and groups. `test.sh` installs the clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use common::{run, temp_dir, Broker, Client};
use weir_protocol::batch::{BatchBuilder, BatchOptions, Compression, NewRecord, RecordHeader};
use weir_protocol::native::v1;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka");

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// kcat with the broker's Kafka address.
fn kcat(b: &Broker, args: &[&str], stdin: &str) -> String {
    let out = run(
        Command::new("kcat").args(["-b", &b.kafka_addr]).args(args),
        stdin.as_bytes(),
        Duration::from_secs(60),
    );
    ok(out, &format!("kcat {args:?}"))
}

/// Runs `program SCRIPTS/script BOOTSTRAP args..`, which prints "ok" when its scenario passed.
fn script(b: &Broker, program: &str, script: &str, args: &[&str]) {
    let path = format!("{SCRIPTS}/{script}");
    let out = run(
        Command::new(program)
            .arg(&path)
            .arg(&b.kafka_addr)
            .args(args)
            .env("KAFKAJS_NO_PARTITIONER_WARNING", "1"),
        b"",
        Duration::from_secs(180),
    );
    let stdout = ok(out, &format!("{script} {args:?}"));
    assert!(stdout.contains("ok"), "{script} {args:?}: {stdout}");
}

fn confluent(b: &Broker, scenario: &str) {
    script(b, "python3", "confluent_scenarios.py", &[scenario]);
}

/// kafka-python and aiokafka.
fn python(b: &Broker, scenario: &str) {
    script(b, "python3", "python_scenarios.py", &[scenario]);
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn native(b: &Broker) -> Client {
    b.client().await
}

fn create_topic(b: &Broker, name: &str, partitions: i32) {
    rt().block_on(async {
        let r = native(b).await.create_topic(name, partitions, &[]).await;
        assert_eq!(r.error_code, 0, "create {name}: {}", r.error_message);
    });
}

// ------------------------------------------------------------------------ kcat

fn kcat_metadata(b: &Broker) {
    create_topic(b, "kc-meta", 3);
    let out = kcat(b, &["-L", "-t", "kc-meta"], "");
    assert!(
        out.contains(&format!("broker 0 at {}", b.kafka_addr)),
        "{out}"
    );
    assert!(out.contains("topic \"kc-meta\" with 3 partitions"), "{out}");
}

fn kcat_keys_headers(b: &Broker) {
    // Auto-created by kcat's Metadata request (topics.auto_create = true in this broker).
    kcat(
        b,
        &[
            "-P", "-t", "kc-kh", "-p", "0", "-K", ":", "-H", "h1=x", "-H", "h2=y",
        ],
        "k1:v1\nk2:v2\n",
    );
    let out = kcat(
        b,
        &[
            "-C",
            "-t",
            "kc-kh",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k|%s|%h|%o\n",
        ],
        "",
    );
    assert_eq!(out, "k1|v1|h1=x,h2=y|0\nk2|v2|h1=x,h2=y|1\n");
}

fn kcat_offsets(b: &Broker) {
    create_topic(b, "kc-off", 1);
    let lines: String = (0..10).map(|i| format!("m{i}\n")).collect();
    kcat(b, &["-P", "-t", "kc-off", "-p", "0"], &lines);
    let tail = kcat(b, &["-C", "-t", "kc-off", "-o", "-3", "-e"], "");
    assert_eq!(tail, "m7\nm8\nm9\n");
    let end = kcat(b, &["-C", "-t", "kc-off", "-o", "end", "-e"], "");
    assert_eq!(end, "");
    let from = kcat(b, &["-C", "-t", "kc-off", "-o", "8", "-e"], "");
    assert_eq!(from, "m8\nm9\n");
}

/// Records written through the native listener, read by kcat byte for byte (keys,
/// values, headers, timestamps); `-o s@ts` seeks by timestamp.
fn native_to_kcat(b: &Broker) {
    create_topic(b, "kc-native", 1);
    let batch = |ts: i64, recs: &[(&str, &str, &str)]| {
        let mut builder = BatchBuilder::new(BatchOptions::new(Compression::None));
        for (i, (k, v, h)) in recs.iter().enumerate() {
            let headers = [RecordHeader {
                key: "hk".into(),
                value: Some(Bytes::copy_from_slice(h.as_bytes())),
            }];
            let rec = NewRecord {
                timestamp: ts + i as i64,
                key: Some(k.as_bytes()),
                value: Some(v.as_bytes()),
                headers: &headers,
            };
            builder.push(&rec).unwrap();
        }
        Bytes::from(builder.build().unwrap())
    };
    rt().block_on(async {
        let mut c = native(b).await;
        let r = c
            .produce(
                "kc-native",
                0,
                batch(1_000, &[("a", "1", "x"), ("b", "2", "y")]),
            )
            .await;
        assert_eq!(r.error_code, 0);
        let r = c
            .produce("kc-native", 0, batch(5_000, &[("c", "3", "z")]))
            .await;
        assert_eq!(r.error_code, 0);
    });
    let all = kcat(
        b,
        &[
            "-C",
            "-t",
            "kc-native",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k|%s|%h|%T\n",
        ],
        "",
    );
    assert_eq!(all, "a|1|hk=x|1000\nb|2|hk=y|1001\nc|3|hk=z|5000\n");
    let late = kcat(
        b,
        &["-C", "-t", "kc-native", "-o", "s@3000", "-e", "-f", "%s\n"],
        "",
    );
    assert_eq!(late, "3\n");
}

/// Several megabytes read by kcat (Fetch v12): records in the page cache leave through
/// the Kafka listener by `sendfile` inside Kafka's own framing, and every one arrives.
fn kcat_large_fetch(b: &Broker) {
    const SENDFILE: &str = "weir_fetch_bytes_total{path=\"sendfile\"}";
    let metrics = std::fs::read_to_string(b.dir.join("metrics.addr")).unwrap();
    let sent = || {
        let body = rt().block_on(common::metrics_text(metrics.trim(), |_| true));
        common::metric(&body, SENDFILE).unwrap_or(0.0)
    };
    let before = sent();
    create_topic(b, "kc-large", 1);
    // kcat prints key, offset and value size only: the harness reads a child's output
    // after it exits, so megabytes of values would fill the pipe and stall kcat.
    let mut want = String::new();
    rt().block_on(async {
        let mut c = native(b).await;
        for i in 0..60 {
            let mut builder = BatchBuilder::new(BatchOptions::new(Compression::None));
            for k in 0..3 {
                let key = format!("{i:03}-{k}");
                let v = "q".repeat(20_000 + i);
                builder
                    .push(&NewRecord::new(
                        1_000 + i as i64,
                        Some(key.as_bytes()),
                        Some(v.as_bytes()),
                    ))
                    .unwrap();
                want.push_str(&format!("{key} {} {}\n", i * 3 + k, v.len()));
            }
            let r = c
                .produce("kc-large", 0, Bytes::from(builder.build().unwrap()))
                .await;
            assert_eq!(r.error_code, 0);
        }
    });
    let got = kcat(
        b,
        &[
            "-C",
            "-t",
            "kc-large",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k %o %S\n",
        ],
        "",
    );
    assert_eq!(got, want);
    if weir_storage::testkit::zero_copy_supported(&b.dir) {
        let after = sent();
        assert!(
            after - before >= 1_000_000.0,
            "{before} -> {after} bytes sent from files"
        );
    }
}

fn kcat_compression(b: &Broker) {
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kc-z-{codec}");
        create_topic(b, &topic, 1);
        let lines: String = (0..50).map(|i| format!("{codec}-{i}\n")).collect();
        kcat(b, &["-P", "-t", &topic, "-p", "0", "-z", codec], &lines);
        let out = kcat(b, &["-C", "-t", &topic, "-o", "beginning", "-e"], "");
        assert_eq!(out, lines, "{codec}");
    }
}

/// kcat -G consumes as a group member; its commits are read back over the native listener.
fn kcat_group(b: &Broker) {
    create_topic(b, "kc-group", 2);
    kcat(b, &["-P", "-t", "kc-group", "-p", "0"], "a\nb\nc\n");
    kcat(b, &["-P", "-t", "kc-group", "-p", "1"], "d\n");
    let out = kcat(
        b,
        &[
            "-G",
            "kc-g1",
            "kc-group",
            "-o",
            "beginning",
            "-e",
            "-X",
            "auto.commit.interval.ms=100",
        ],
        "",
    );
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    assert_eq!(got, ["a", "b", "c", "d"]);
    rt().block_on(async {
        let mut c = native(b).await;
        let r = c
            .call(v1::OffsetFetchRequest {
                group_id: "kc-g1".into(),
                topics: Vec::new(),
                all_topics: true,
                require_stable: false,
            })
            .await;
        let mut offsets: Vec<(i32, i64)> = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.committed_offset))
            })
            .collect();
        offsets.sort_unstable();
        assert_eq!(offsets, [(0, 3), (1, 1)]);
    });
}

// ------------------------------------------------------------------------ confluent-kafka

/// Records produced by confluent-kafka read through the native listener.
fn confluent_to_native(b: &Broker) {
    confluent(b, "produce_for_native");
    rt().block_on(async {
        let mut c = native(b).await;
        let data = c.fetch("cf-to-native", 0, 0, 0, 1).await;
        assert_eq!(data.error_code, 0);
        let mut values = Vec::new();
        for item in weir_protocol::batch::BatchIter::new(&data.records, true) {
            let (_, bytes) = item.unwrap();
            for r in weir_protocol::batch::decode_records(bytes).unwrap() {
                values.push((r.key.clone(), r.value.clone()));
            }
        }
        let want: Vec<_> = (0..5)
            .map(|i| {
                (
                    Some(Bytes::from(format!("key-{i}"))),
                    Some(Bytes::from(format!("value-{i}"))),
                )
            })
            .collect();
        assert_eq!(values, want);
    });
}

/// A Kafka member cannot join a group that native members use.
fn mixed_group_refused(b: &Broker) {
    create_topic(b, "cf-mixed", 1);
    rt().block_on(async {
        let mut c = native(b).await;
        let join = |member_id: String| v1::JoinGroupRequest {
            group_id: "mixed".into(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 30_000,
            member_id,
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![v1::JoinGroupProtocol {
                name: "range".into(),
                metadata: Bytes::new(),
            }],
            topics: vec!["cf-mixed".into()],
            owned_partitions: Vec::new(),
            reason: String::new(),
        };
        let mut r = c.call(join(String::new())).await;
        // Two-step join (KIP-394): the first answer assigns the member id.
        if r.error_code == 79 {
            r = c.call(join(r.member_id)).await;
        }
        assert_eq!(r.error_code, 0, "native join");
    });
    confluent(b, "mixed_group");
}

/// A named scenario run against the shared broker.
type Scenario = (&'static str, fn(&Broker));

#[test]
fn kafka_clients() {
    let dir = temp_dir();
    let cfg = dir.path().join("kafka-test.toml");
    // Auto-creation for kcat -P; a quick cleaner for the compaction scenario; KIP-848
    // members heartbeat every 500 ms (Kafka's 5 s would slow reconciliation down) and
    // expire after 6 s (Kafka's 45 s would slow the crash scenario down).
    std::fs::write(
        &cfg,
        "[topics]\nauto_create = true\n[log]\ncleaner_backoff_ms = 200\n\
         [groups]\nconsumer_heartbeat_interval_ms = 500\nconsumer_session_timeout_ms = 6000\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let b = Broker::start(&data, &["--config", cfg.to_str().unwrap()]);
    assert!(!b.kafka_addr.is_empty(), "kafka.addr not written");

    let scenarios: &[Scenario] = &[
        ("kcat_metadata", kcat_metadata),
        ("kcat_keys_headers", kcat_keys_headers),
        ("kcat_offsets", kcat_offsets),
        ("native_to_kcat", native_to_kcat),
        ("kcat_large_fetch", kcat_large_fetch),
        ("kcat_compression", kcat_compression),
        ("kcat_group", kcat_group),
        ("confluent_to_native", confluent_to_native),
        ("confluent_idempotent", |b| confluent(b, "idempotent")),
        ("confluent_offsets", |b| confluent(b, "offsets")),
        ("confluent_admin", |b| confluent(b, "admin")),
        ("confluent_group_range", |b| confluent(b, "group_range")),
        ("confluent_group_cooperative_sticky", |b| {
            confluent(b, "group_cooperative_sticky")
        }),
        ("confluent_static_member", |b| confluent(b, "static_member")),
        ("confluent_consumer_protocol", |b| {
            confluent(b, "consumer_protocol")
        }),
        ("confluent_consumer_protocol_crash", |b| {
            confluent(b, "consumer_protocol_crash")
        }),
        ("mixed_group_refused", mixed_group_refused),
        ("kafka_python_producer_group", |b| {
            python(b, "kafka_python_producer_group")
        }),
        ("kafka_python_admin", |b| python(b, "kafka_python_admin")),
        ("kafka_python_custom_assignor", |b| {
            python(b, "kafka_python_custom_assignor")
        }),
        ("kafka_python_compacted", |b| {
            python(b, "kafka_python_compacted")
        }),
        ("aiokafka_producer_group", |b| {
            python(b, "aiokafka_producer_group")
        }),
        ("kafkajs_producer_group", |b| {
            script(b, "node", "kafkajs_scenarios.js", &[])
        }),
    ];
    let only = std::env::var("KAFKA_SCENARIO").ok();
    let mut failed = Vec::new();
    for (name, scenario) in scenarios {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        eprintln!("--- {name}");
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&b))).is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "failed scenarios: {failed:?}");
}
