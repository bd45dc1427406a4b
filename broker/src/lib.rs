//! The Weir broker.
