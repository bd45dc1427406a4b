//! Log compaction (the cleaner).
//!
//! - `swap`: the crash-safe protocol that replaces segments with cleaned ones.

pub mod swap;
