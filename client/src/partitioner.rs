//! Choosing a partition for a record, the way Kafka's Java producer does.
//!
//! Keyed records hash the key with Kafka's murmur2 and mask the sign bit, so a key lands on
//! the same partition as it would with a Java or librdkafka (`murmur2_random`) producer.
//! Keyless records stick to one partition until about `batch_size` bytes went there
//! (KIP-794), which fills batches instead of spreading tiny ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Picks a partition for a record.
pub trait Partitioner: Send + Sync {
    /// `key` is `None` for a null key; `partition_count` counts all partitions of the topic.
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value_len: usize,
        partition_count: i32,
    ) -> i32;
}

/// Kafka's murmur2 (32-bit, seed 0x9747b28c) as in `org.apache.kafka.common.utils.Utils`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    const SEED: u32 = 0x9747_b28c;
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        // chunks_exact yields 4 bytes each; the conversion cannot fail.
        let Ok(word) = <[u8; 4]>::try_from(c) else {
            continue;
        };
        let mut k = u32::from_le_bytes(word);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if let Some(third) = tail.get(2) {
        h ^= u32::from(*third) << 16;
    }
    if let Some(second) = tail.get(1) {
        h ^= u32::from(*second) << 8;
    }
    if let Some(first) = tail.first() {
        h ^= u32::from(*first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Partition of a keyed record: `(murmur2(key) & 0x7fffffff) % partition_count`.
pub fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    if partition_count <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partition_count
}

/// The default partitioner: murmur2 for keys, sticky for null keys.
pub struct DefaultPartitioner {
    batch_size: usize,
    sticky: Mutex<StickyState>,
    seed: AtomicU64,
}

struct StickyState {
    topic_partition: Option<(String, i32)>,
    bytes: usize,
}

impl DefaultPartitioner {
    /// `batch_size`: bytes sent to one sticky partition before switching.
    pub fn new(batch_size: usize) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x2545_f491_4f6c_dd1d);
        DefaultPartitioner {
            batch_size: batch_size.max(1),
            sticky: Mutex::new(StickyState {
                topic_partition: None,
                bytes: 0,
            }),
            seed: AtomicU64::new(seed | 1),
        }
    }

    fn random(&self) -> u64 {
        // xorshift64*: enough to spread sticky choices, no need for a crypto RNG.
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value_len: usize,
        partition_count: i32,
    ) -> i32 {
        if let Some(key) = key {
            return partition_for_key(key, partition_count);
        }
        if partition_count <= 1 {
            return 0;
        }
        let mut s = match self.sticky.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let current = match &s.topic_partition {
            Some((t, p)) if t == topic && *p < partition_count && s.bytes < self.batch_size => *p,
            _ => {
                let p = (self.random() % partition_count as u64) as i32;
                s.topic_partition = Some((topic.to_string(), p));
                s.bytes = 0;
                p
            }
        };
        s.bytes += value_len.max(1);
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka_test_vectors() {
        let cases: [(&str, i32); 6] = [
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
        for (key, want) in cases {
            assert_eq!(murmur2(key.as_bytes()), want, "key {key}");
        }
        assert_eq!(murmur2(b"") & 0x7fff_ffff, 275646681);
    }

    #[test]
    fn keyed_partitions_match_java_client() {
        assert_eq!(partition_for_key(b"foobar", 50), 16);
        assert_eq!(partition_for_key(b"abc", 50), 7);
        assert_eq!(partition_for_key(b"21", 50), 40);
    }

    #[test]
    fn sticky_partition_switches_after_batch_size() {
        let p = DefaultPartitioner::new(100);
        let first = p.partition("t", None, 10, 8);
        for _ in 0..9 {
            assert_eq!(p.partition("t", None, 10, 8), first);
        }
        // 100 bytes went to `first`; the next record may move. Over many batches we
        // must see more than one partition.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(p.partition("t", None, 50, 8));
        }
        assert!(seen.len() > 1);
        assert!(seen.iter().all(|x| (0..8).contains(x)));
    }
}
