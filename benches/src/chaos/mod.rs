//! `weir-chaos`: a seeded fault-injection campaign over three real `weir-broker`
//! processes on loopback, with a checker over every operation (§4 of
//! reliability-and-faults.md; `src/bin/weir-chaos.rs` is the command line).
//!
//! Layout:
//! - [`rng`]: the seeded generator; [`schedule`]: the fault plan (pure).
//! - [`proxy`]: a user-space TCP proxy per directed link (pass, delay, hold, reset).
//! - [`cluster`]: the three brokers, their proxies, tmpfs data dirs, kill/stop/restart.
//! - [`faults`]: turns a planned step into actions on live targets.
//! - [`history`]: the operation history (JSONL); [`workload`]: producers, assign
//!   consumers, the consumer group.
//! - [`checker`]: rules 1–12 over a history (pure); [`run`]: one run end to end.

pub mod checker;
pub mod cluster;
pub mod faults;
pub mod history;
pub mod proxy;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod workload;
