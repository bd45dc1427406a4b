//! Weir client library: producer, consumer and admin over the native protocol.
