//! Kafka's wire protocol, where Weir needs more than the `kafka-protocol` crate's message
//! types: the request header decoder (which picks the header version from the API key and
//! version before anything else is trusted), and the property its fuzz target checks.

pub mod fuzzing;
pub mod header;
