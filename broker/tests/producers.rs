//! Idempotent producers (sequences enforced by storage, ids from InitProducerId),
//! compacted-topic key rules and compressed batches, end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{built_batch, temp_dir, Broker};
use weir_protocol::batch::{decode_records, BatchIter, Compression};
use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

#[tokio::test]
async fn idempotent_retries_are_deduplicated_and_gaps_rejected() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("idem", 1, &[]).await;
    let init = c.call(v1::InitProducerIdRequest::default()).await;
    let (pid, epoch) = (init.producer_id, init.producer_epoch as i16);

    let first = built_batch(
        &[(None, Some(b"a")), (None, Some(b"b"))],
        Some((pid, epoch, 0)),
        Compression::None,
    );
    let r = c.produce("idem", 0, first.clone()).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    // The same batch again (a retry): same offsets, nothing appended.
    let r = c.produce("idem", 0, first).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let next = built_batch(
        &[(None, Some(b"c"))],
        Some((pid, epoch, 2)),
        Compression::None,
    );
    assert_eq!(c.produce("idem", 0, next).await.base_offset, 2);
    // A gap in the sequence.
    let gap = built_batch(
        &[(None, Some(b"x"))],
        Some((pid, epoch, 9)),
        Compression::None,
    );
    let r = c.produce("idem", 0, gap).await;
    assert_eq!(
        ErrorCode::from_i32(r.error_code),
        ErrorCode::OutOfOrderSequenceNumber
    );
    // After an epoch bump the old epoch is fenced.
    let bumped = c
        .call(v1::InitProducerIdRequest {
            producer_id: Some(pid),
            producer_epoch: Some(i32::from(epoch)),
            ..Default::default()
        })
        .await;
    assert_eq!(bumped.producer_epoch, i32::from(epoch) + 1);
    let fresh = built_batch(
        &[(None, Some(b"d"))],
        Some((pid, epoch + 1, 0)),
        Compression::None,
    );
    assert_eq!(c.produce("idem", 0, fresh).await.base_offset, 3);
    let stale = built_batch(
        &[(None, Some(b"e"))],
        Some((pid, epoch, 3)),
        Compression::None,
    );
    let r = c.produce("idem", 0, stale).await;
    assert_eq!(
        ErrorCode::from_i32(r.error_code),
        ErrorCode::InvalidProducerEpoch
    );
    assert_eq!(c.fetch("idem", 0, 0, 0, 1).await.high_watermark, 4);
}

#[tokio::test]
async fn compacted_topics_need_keys_and_compressed_batches_round_trip() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    let mut c = b.client().await;
    c.create_topic("compact", 1, &[("cleanup.policy", "compact")])
        .await;
    let keyless = built_batch(&[(None, Some(b"v"))], None, Compression::None);
    let r = c.produce("compact", 0, keyless).await;
    assert_eq!(ErrorCode::from_i32(r.error_code), ErrorCode::InvalidRecord);
    let keyed = built_batch(&[(Some(b"k"), Some(b"v"))], None, Compression::None);
    assert_eq!(c.produce("compact", 0, keyed).await.error_code, 0);

    c.create_topic("zipped", 1, &[]).await;
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let values: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("{codec:?}-{i}").repeat(10).into_bytes())
            .collect();
        let recs: Vec<_> = values.iter().map(|v| (None, Some(v.as_slice()))).collect();
        let r = c
            .produce("zipped", 0, built_batch(&recs, None, codec))
            .await;
        assert_eq!(r.error_code, 0, "{codec:?}: {}", r.error_message);
        let f = c.fetch("zipped", 0, r.base_offset, 0, 1).await;
        let (_, bytes) = BatchIter::new(&f.records, true).next().unwrap().unwrap();
        let got: Vec<Vec<u8>> = decode_records(bytes)
            .unwrap()
            .into_iter()
            .map(|r| r.value.unwrap().to_vec())
            .collect();
        assert_eq!(got, values, "{codec:?}");
    }
}

#[tokio::test]
async fn requests_larger_than_the_memory_budget_still_complete() {
    let dir = temp_dir();
    let cfg = dir.path().join("mem.toml");
    std::fs::write(
        &cfg,
        "[server]\nqueued_max_request_bytes = 1048576\n[log]\nmax_message_bytes = 4000000\n",
    )
    .unwrap();
    let b = Broker::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let mut c = b.client().await;
    c.create_topic("mem", 1, &[]).await;
    let big = vec![1u8; 3_000_000];
    // Several pipelined large requests: they queue for the budget, none deadlocks.
    let mut ids = Vec::new();
    for _ in 0..4 {
        let batch = built_batch(&[(None, Some(big.as_slice()))], None, Compression::None);
        ids.push(c.send(common::produce_req("mem", 0, batch, -1)).await);
    }
    for (i, id) in ids.into_iter().enumerate() {
        let r = c.recv().await;
        assert_eq!(r.correlation_id, id);
        let Some(v1::response_envelope::Body::Produce(p)) = r.body else {
            panic!()
        };
        let pr = &p.responses[0].partition_responses[0];
        assert_eq!(
            (pr.error_code, pr.base_offset),
            (0, i as i64),
            "{}",
            pr.error_message
        );
    }
}
