#!/usr/bin/env bash
# Replication workloads on a real 3-broker cluster on 127.0.0.1 (issue 13's benchmark):
# RF=1 acks=1, RF=3 acks=1 and RF=3 acks=all with 1 and 8 partitions (records/s and broker
# CPU per million records, all three brokers together), and end-to-end latency at 50,000
# records/s with RF=3 acks=all beside RF=1. The sibling of compare.sh for the cluster;
# extra arguments go to cluster_bench (e.g. --records 500000, --output json).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p weir-broker -p weir-client -p weir-benches
exec target/release/cluster_bench --only replication "$@"
