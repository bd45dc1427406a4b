//! murmur2 partitioning cost per key size: the producer pays it once per keyed record.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use weir_client::partitioner::{murmur2, partition_for_key};

fn bench_murmur2(c: &mut Criterion) {
    let mut g = c.benchmark_group("murmur2");
    for len in [8usize, 16, 64, 256] {
        let key: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("hash", len), &key, |b, k| {
            b.iter(|| murmur2(black_box(k)))
        });
        g.bench_with_input(BenchmarkId::new("partition_of_64", len), &key, |b, k| {
            b.iter(|| partition_for_key(black_box(k), 64))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_murmur2);
criterion_main!(benches);
