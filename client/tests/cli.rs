//! The `weir` CLI against a real broker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::HashMap;

use common::{weir, weir_ok, Broker};
use weir_client::partitioner::partition_for_key;

#[test]
fn hundred_thousand_keyed_records_round_trip_in_order_per_partition() {
    let broker = Broker::start();
    let a = &broker.addr;
    weir_ok(a, &["topic", "create", "big", "--partitions", "4"], b"");
    let n = 100_000;
    let mut input = String::with_capacity(n * 24);
    for i in 0..n {
        input.push_str(&format!("key-{}|value-{i}\n", i % 1000));
    }
    let out = weir_ok(
        a,
        &["produce", "big", "--key-separator", "|", "--output", "json"],
        input.as_bytes(),
    );
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["acknowledged"], n as u64);

    let out = weir_ok(
        a,
        &[
            "--output",
            "json",
            "consume",
            "big",
            "--from-beginning",
            "--max-messages",
            "100000",
            "--timeout-ms",
            "5000",
        ],
        b"",
    );
    let mut last_value_per_partition: HashMap<i64, i64> = HashMap::new();
    let mut next_offset: HashMap<i64, i64> = HashMap::new();
    let mut count = 0;
    for line in out.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let p = r["partition"].as_i64().unwrap();
        let key = r["key"].as_str().unwrap();
        let value = r["value"].as_str().unwrap();
        let i: i64 = value.trim_start_matches("value-").parse().unwrap();
        // Placement: Kafka's murmur2 partitioner (vectors are checked in the unit tests).
        assert_eq!(i64::from(partition_for_key(key.as_bytes(), 4)), p, "{key}");
        assert_eq!(key, format!("key-{}", i % 1000));
        // Order per partition: offsets dense from 0 and values increasing.
        let off = r["offset"].as_i64().unwrap();
        assert_eq!(
            off,
            *next_offset.get(&p).unwrap_or(&0),
            "dense offsets in partition {p}"
        );
        next_offset.insert(p, off + 1);
        if let Some(prev) = last_value_per_partition.insert(p, i) {
            assert!(prev < i, "partition {p}: {prev} then {i}");
        }
        count += 1;
    }
    assert_eq!(count, n);
    assert_eq!(next_offset.values().sum::<i64>(), n as i64);

    let d = weir_ok(a, &["topic", "describe", "big", "--output", "json"], b"");
    let d: serde_json::Value = serde_json::from_str(d.trim()).unwrap();
    assert_eq!(d["name"], "big");
    let parts = d["partitions"].as_array().unwrap();
    let hw: i64 = parts
        .iter()
        .map(|p| p["high_watermark"].as_i64().unwrap())
        .sum();
    assert_eq!(hw, n as i64);
    for p in parts {
        assert_eq!(p["log_end_offset"], p["high_watermark"], "{p}");
        let size = p["size_bytes"].as_u64();
        assert!(size.is_some(), "size_bytes must be a number: {p}");
        if p["high_watermark"].as_i64() > Some(0) {
            assert!(
                size > Some(0),
                "a partition holding records has a size: {p}"
            );
        }
    }
}

#[test]
fn kafka_placement_vectors_through_the_cli() {
    // Keys whose partitions under Kafka's Java DefaultPartitioner are known (also in the
    // partitioner unit tests): the produced records must land exactly there.
    let broker = Broker::start();
    let a = &broker.addr;
    weir_ok(a, &["topic", "create", "placed", "--partitions", "10"], b"");
    // Kafka's murmur2 test vectors (apache/kafka UtilsTest), as literal hashes.
    let vectors: [(&str, i32); 6] = [
        ("21", -973932308),
        ("foobar", -790332482),
        ("a-little-bit-long-string", -985981536),
        ("a-little-bit-longer-string", -1486304829),
        (
            "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
        ),
        ("abc", 479470107),
    ];
    let input: String = vectors.iter().map(|(k, _)| format!("{k}=v\n")).collect();
    weir_ok(
        a,
        &["produce", "placed", "--key-separator", "="],
        input.as_bytes(),
    );
    let out = weir_ok(
        a,
        &[
            "consume",
            "placed",
            "--from-beginning",
            "--max-messages",
            "6",
            "--timeout-ms",
            "3000",
            "--output",
            "json",
        ],
        b"",
    );
    let mut seen = 0;
    for line in out.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = r["key"].as_str().unwrap();
        let hash = vectors.iter().find(|(k, _)| *k == key).unwrap().1;
        let expected = (hash & 0x7fff_ffff) % 10;
        assert_eq!(
            r["partition"].as_i64().unwrap(),
            i64::from(expected),
            "{key}"
        );
        seen += 1;
    }
    assert_eq!(seen, vectors.len());
}

#[test]
fn headers_nulls_binary_and_partition_flag() {
    let broker = Broker::start();
    let a = &broker.addr;
    weir_ok(a, &["topic", "create", "h", "--partitions", "2"], b"");
    weir_ok(
        a,
        &[
            "produce",
            "h",
            "--partition",
            "1",
            "--key-separator",
            ":",
            "--empty-as-null",
            "--header",
            "src=test",
            "--acks",
            "1",
            "--compression",
            "gzip",
        ],
        b"k1:\nk2:\xff\xfe\n",
    );
    let out = weir_ok(
        a,
        &[
            "consume",
            "h",
            "--partition",
            "1",
            "--offset",
            "0",
            "--max-messages",
            "2",
            "--timeout-ms",
            "3000",
            "--output",
            "json",
        ],
        b"",
    );
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["value"], serde_json::Value::Null);
    assert_eq!(rows[0]["headers"][0]["key"], "src");
    assert_eq!(rows[0]["headers"][0]["value"], "test");
    assert_eq!(rows[1]["value_base64"], "//4=");
    assert!(rows[1].get("value").is_none());
    assert!(rows.iter().all(|r| r["partition"] == 1));
}

#[test]
fn topic_admin_commands() {
    let broker = Broker::start_with_config("[topics]\ndefault_partitions = 3\n");
    let a = &broker.addr;
    let created = weir_ok(
        a,
        &[
            "topic",
            "create",
            "adm",
            "--partitions",
            "1",
            "--config",
            "retention.ms=60000",
        ],
        b"",
    );
    assert_eq!(created, "created topic adm with 1 partition\n", "on stdout");
    // Without --partitions the broker's default_partitions applies (as kafka-topics.sh).
    let dflt = weir_ok(a, &["topic", "create", "dflt"], b"");
    assert_eq!(dflt, "created topic dflt with 3 partitions\n");
    // A single node is the metadata quorum of itself and leads every partition.
    let cluster: serde_json::Value = serde_json::from_str(&weir_ok(
        a,
        &["--output", "json", "cluster", "describe"],
        b"",
    ))
    .unwrap();
    assert_eq!(cluster["controller"]["leader"], 0, "{cluster}");
    assert_eq!(cluster["controller"]["voters"][0]["id"], 0, "{cluster}");
    assert_eq!(cluster["controller"]["voters"][0]["lag"], 0, "{cluster}");
    assert!(
        cluster["controller"]["commit_index"].as_u64().unwrap() >= 3,
        "{cluster}"
    );
    assert_eq!(cluster["brokers"][0]["address"], a.as_str(), "{cluster}");
    assert!(
        cluster["brokers"][0]["partitions_led"].as_i64().unwrap() >= 4,
        "{cluster}"
    );
    assert_eq!(
        cluster["cluster_id"].as_str().unwrap().len(),
        22,
        "{cluster}"
    );
    let list = weir_ok(a, &["topic", "list", "--output", "json"], b"");
    assert!(list.contains("\"adm\""), "{list}");
    weir_ok(a, &["topic", "add-partitions", "adm", "--total", "3"], b"");
    weir_ok(
        a,
        &["topic", "alter-config", "adm", "--set", "retention.ms=1234"],
        b"",
    );
    let d = weir_ok(a, &["--output", "json", "topic", "describe", "adm"], b"");
    let d: serde_json::Value = serde_json::from_str(d.trim()).unwrap();
    assert_eq!(d["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(d["configs"]["retention.ms"], "1234");
    let p0 = &d["partitions"][0];
    for field in [
        "partition",
        "leader",
        "replicas",
        "isr",
        "log_start_offset",
        "log_end_offset",
        "high_watermark",
        "size_bytes",
    ] {
        assert!(p0.get(field).is_some(), "missing {field}");
    }
    assert_eq!(
        p0["size_bytes"], 0,
        "an empty partition has size 0, not null"
    );
    let missing = weir(a, &["produce", "no-such-topic"], b"x\n");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
    let bad_partition = weir(a, &["produce", "adm", "--partition", "9"], b"x\n");
    assert_eq!(bad_partition.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_partition.stderr).contains("partition 9"));
    let dup = weir(a, &["topic", "create", "adm", "--partitions", "1"], b"");
    assert!(!dup.status.success());
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already exists")
            || String::from_utf8_lossy(&dup.stderr).contains("TopicAlreadyExists")
    );
    weir_ok(a, &["topic", "delete", "adm"], b"");
    let gone = weir(a, &["topic", "describe", "adm"], b"");
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("does not exist"));
}

#[test]
fn bad_arguments_fail_with_a_message() {
    // No broker needed: these fail before any connection.
    let cases: &[&[&str]] = &[
        &["produce", "t", "--acks", "7"],
        &["produce", "t", "--compression", "brotli"],
        &["consume", "t", "--from-beginning", "--offset", "1"],
        &["topic", "create", "t"],
        &["topic", "create", "t", "--partitions", "zero"],
        &["topic", "alter-config", "t", "--set", "novalue"],
        &["nonsense"],
        &[],
    ];
    for args in cases {
        let out = weir("127.0.0.1:1", args, b"");
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    // Unreachable broker: a clear runtime error, exit 1.
    let out = weir("127.0.0.1:1", &["topic", "list"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
    // Help everywhere, with an example.
    for args in [
        &["--help"][..],
        &["topic", "create", "--help"],
        &["produce", "--help"],
        &["consume", "--help"],
        &["topic", "describe", "--help"],
    ] {
        let out = weir("127.0.0.1:1", args, b"");
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("weir "),
            "{args:?}"
        );
    }
}

/// Issue 11: `weir produce` takes --delivery-timeout-ms and --request-timeout-ms and says
/// the first delivery error while it runs (stdin still open), not after the input ends.
#[test]
fn produce_reports_the_first_delivery_error_as_it_happens() {
    use std::io::{BufRead, Write};
    let broker = Broker::start();
    let a = &broker.addr;
    weir_ok(a, &["topic", "create", "dl", "--partitions", "1"], b"");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "produce",
            "dl",
            "--delivery-timeout-ms",
            "1500",
            "--request-timeout-ms",
            "500",
        ])
        .env("WEIR_BOOTSTRAP", a)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    // Acknowledged while the broker runs: the log end moves to 1.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let d = weir_ok(a, &["--output", "json", "topic", "describe", "dl"], b"");
        let d: serde_json::Value = serde_json::from_str(d.trim()).unwrap();
        if d["partitions"][0]["high_watermark"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "first record not acknowledged: {d}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    broker.signal("STOP");
    stdin.write_all(b"second\n").unwrap();
    stdin.flush().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(|l| l.ok())
        {
            let _ = tx.send(line);
        }
    });
    // A deadline, so a CLI that holds the error back until stdin ends fails, not hangs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let first = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("delivery failed") => break Ok(l),
            Ok(_) => continue, // e.g. a log line about the frozen connection
            Err(e) => break Err(e),
        }
    };
    broker.signal("CONT");
    let first = first.expect("no delivery error while stdin is still open");
    assert!(
        first.contains("delivery failed") && first.contains("1500 ms"),
        "{first}"
    );
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let rest: Vec<String> = rx.iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("produced 1 of 2 records")),
        "{rest:?}"
    );
}

/// Issue 17: the examples in `client/examples/` run against a real broker and end by
/// themselves: produce 12, read them back without a group, then in a group with commits.
#[test]
fn examples_produce_consume_and_consume_in_a_group() {
    use common::run_example;
    let broker = Broker::start_with_config("[groups]\ninitial_rebalance_delay_ms = 100\n");
    let a = &broker.addr;
    let out = run_example(a, "produce", &["ex", "12"]);
    assert!(out.contains("created topic ex (3 partitions)"), "{out}");
    assert!(out.contains("produced 12 records to ex"), "{out}");
    let out = run_example(a, "consume", &["ex", "12"]);
    assert!(out.contains("consumed 12 records from ex"), "{out}");
    let out = run_example(a, "consume_group", &["ex", "exg", "12"]);
    assert!(
        out.contains("consumed 12 records from ex in group exg"),
        "{out}"
    );
    // Committed per record: the group has nothing left to read.
    let d = weir_ok(a, &["--output", "json", "group", "describe", "exg"], b"");
    let d: serde_json::Value = serde_json::from_str(d.trim()).unwrap();
    let lag: i64 = d["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 0, "{d}");
    assert_eq!(d["state"], "Empty", "the example left the group: {d}");
}

#[test]
fn partition_reassign_commands() {
    let broker = Broker::start();
    let a = &broker.addr;
    weir_ok(a, &["topic", "create", "mv", "--partitions", "2"], b"");
    let status = weir_ok(a, &["partition", "reassign", "--status"], b"");
    assert_eq!(status, "no reassignment in progress\n");

    // The node's own id (0) is the whole replica set already: the move completes at once.
    let out = weir_ok(
        a,
        &[
            "partition",
            "reassign",
            "--topic",
            "mv",
            "--partition",
            "0",
            "--replicas",
            "0",
        ],
        b"",
    );
    assert_eq!(out, "started 1 of 1 partition moves\n");

    // A plan with one good and one unknown partition: the good one starts, the other is
    // named on stderr and the exit status says so.
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        r#"{"version":1,"partitions":[{"topic":"mv","partition":1,"replicas":[0]},
            {"topic":"mv","partition":5,"replicas":[0]}]}"#,
    )
    .unwrap();
    let out = weir(
        a,
        &["partition", "reassign", "--plan", plan.to_str().unwrap()],
        b"",
    );
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "started 1 of 2 partition moves\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mv-5") && err.contains("does not exist"),
        "{err}"
    );

    // Unknown brokers and cancelling nothing are refused with the reason.
    let out = weir(
        a,
        &[
            "--output",
            "json",
            "partition",
            "reassign",
            "--topic",
            "mv",
            "--partition",
            "0",
            "--replicas",
            "0,7",
        ],
        b"",
    );
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["refused"][0]["message"], "broker 7 is not registered",
        "{v}"
    );
    let out = weir(
        a,
        &[
            "partition",
            "reassign",
            "--cancel",
            "--topic",
            "mv",
            "--partition",
            "0",
        ],
        b"",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reassignment"));
    let missing = weir(
        a,
        &["partition", "reassign", "--plan", "/nonexistent.json"],
        b"",
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read plan"));
    let status = weir_ok(
        a,
        &["--output", "json", "partition", "reassign", "--status"],
        b"",
    );
    assert_eq!(status.trim(), r#"{"in_progress":[]}"#);
}
