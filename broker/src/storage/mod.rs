//! The broker's view of partition storage. Every other broker module imports storage
//! types from here, so swapping the implementation is a one-line change.
//!
//! INTERIM: `weir-storage` (the real segmented log) is being built in parallel on branch
//! `storage`. Until it lands, `interim.rs` provides the same API (the contract in
//! notes/common.md) over one append-only file per partition, so the broker and its
//! end-to-end tests run today. When `weir_storage::Log` is usable, replace the `pub use`
//! below with `pub use weir_storage::*;` and delete `interim.rs`.

mod interim;

pub use interim::{AppendInfo, CleanupPolicy, Error, Log, LogConfig, ReadInfo};
