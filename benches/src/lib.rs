//! Shared helpers for Weir's benchmarks (workload builders).
