//! The request header decoder lives in `weir_protocol::kafka::header` (pure, fuzzed).

pub use weir_protocol::kafka::header::{decode, Header, HeaderError};
