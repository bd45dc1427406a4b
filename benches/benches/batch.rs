//! RecordBatch v2 codec throughput per compression codec, on 16 KiB batches of 160
//! records of about 100 bytes each (11-byte key, 80-byte JSON-like value, framing): what
//! a producer with the default `batch.size` sends. Throughput is counted in uncompressed
//! batch bytes for every case, so codecs compare on equal work.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use weir_protocol::batch::{
    decode_records, validate_batch, validate_records, BatchBuilder, BatchOptions, Compression,
    NewRecord,
};

const RECORDS: usize = 160;
const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn values() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..RECORDS)
        .map(|i| {
            let key = format!("user-{:06}", i * 7919 % 100_000).into_bytes();
            let mut v = format!(
                "{{\"id\":{i},\"user\":\"user-{}\",\"event\":\"click\",\"ts\":{},\"x\":\"",
                i * 31 % 977,
                1_700_000_000_000u64 + i as u64 * 13
            )
            .into_bytes();
            let mut seed = i as u32 * 2_654_435_761;
            while v.len() < 78 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                v.push(b'a' + (seed >> 27) as u8 % 26);
            }
            v.extend_from_slice(b"\"}");
            (key, v)
        })
        .collect()
}

fn build(codec: Compression, data: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut b = BatchBuilder::with_capacity(BatchOptions::new(codec), 20 * 1024);
    for (i, (k, v)) in data.iter().enumerate() {
        let r = NewRecord::new(1_700_000_000_000 + i as i64, Some(k), Some(v));
        b.push(&r).expect("encodable");
    }
    b.build().expect("buildable")
}

fn bench_batches(c: &mut Criterion) {
    let data = values();
    let plain_len = build(Compression::None, &data).len() as u64;
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(plain_len));
    for codec in CODECS {
        let batch = build(codec, &data);
        let name = codec.name();
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| black_box(build(codec, black_box(&data))))
        });
        g.bench_function(BenchmarkId::new("decode_records", name), |b| {
            b.iter(|| black_box(decode_records(black_box(&batch)).expect("valid")))
        });
        g.bench_function(BenchmarkId::new("validate_batch", name), |b| {
            b.iter(|| black_box(validate_batch(black_box(&batch)).expect("valid")))
        });
        g.bench_function(BenchmarkId::new("validate_records", name), |b| {
            b.iter(|| black_box(validate_records(black_box(&batch), true, 1 << 20).expect("valid")))
        });
        eprintln!(
            "batch size {name}: {} bytes ({} uncompressed)",
            batch.len(),
            plain_len
        );
    }
    g.finish();
}

criterion_group!(benches, bench_batches);
criterion_main!(benches);
