//! Weir storage: synchronous, runtime-free partition logs.
#![deny(clippy::unwrap_used, clippy::expect_used)]
