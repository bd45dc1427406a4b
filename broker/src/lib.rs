//! The Weir broker.
//!
//! Layout:
//! - [`group`]: the consumer-group coordinator's pure logic (state machine, assignors,
//!   offsets, lag, `__consumer_offsets` records).

pub mod group;
