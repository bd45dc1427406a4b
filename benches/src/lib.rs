//! Weir's benchmarks.
//!
//! Layout:
//! - `benches/`: criterion micro-benchmarks (batch codec, storage, murmur2).
//! - `src/bin/storage_rss.rs`, `src/bin/storage_compact.rs`: storage measurements.
//! - [`perf`] and `src/bin/weir-perf.rs`: the end-to-end load tool, with drivers for Weir
//!   and for the peers it is compared with (Redis Streams, NATS JetStream).

pub mod perf;
