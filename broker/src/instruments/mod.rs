//! The numbers the broker records, through the `metrics` facade only.
//!
//! Kept apart from [`crate::metrics`] (the exporter and the lag/partition snapshot, which
//! read the topic table) so that partitions, handlers and the server can record without
//! depending on the aggregator that depends on them.
//!
//! - [`names`]: every family's name, kind and help (the one list).
//! - [`recorders`]: fixed-label handles (requests, latency, connections, purgatory,
//!   flush, cleaner) kept by the `metrics` recorder, registered once at install.

pub mod names;
pub mod recorders;

pub use recorders::{Purgatory, RequestTimer};
