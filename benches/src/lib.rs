//! Weir's benchmarks.
//!
//! Layout:
//! - `benches/`: criterion micro-benchmarks (batch codec, storage, murmur2).
//! - `src/bin/storage_rss.rs`, `src/bin/storage_compact.rs`: storage measurements.
//! - [`perf`] and `src/bin/weir-perf.rs`: the end-to-end load tool, with drivers for Weir
//!   and for the peers it is compared with (Redis Streams, NATS JetStream).
//! - [`chaos`] and `src/bin/weir-chaos.rs`: the fault-injection suite (3 brokers, proxies,
//!   seeded faults, a checker over every operation).

pub mod chaos;
pub mod perf;
