#!/usr/bin/env bash
# Runs every test Weir has, on a fresh machine: installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the end-to-end tests drive for real; installed only when missing.
# prometheus: broker/tests/prometheus.rs scrapes the broker with a real server.
need_pkgs=(prometheus)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Commands broker/tests/kafka_clients.rs runs (kcat; python3 with pip for the Python Kafka
# clients; node and npm for KafkaJS), as command:package; checked by command so that a
# node or python3 from elsewhere counts.
need_cmds=(kcat:kcat python3:python3 node:nodejs npm:npm)
for entry in "${need_cmds[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Kafka client libraries for broker/tests/kafka_clients.rs, into the machine's python3,
# pinned (a new client release can change behaviour under the test's feet) and installed
# only when the pinned version is missing.
need_py=(confluent-kafka==2.16.2 kafka-python==3.0.12 aiokafka==0.14.0)
missing_py=()
for pin in "${need_py[@]}"; do
  python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('${pin%%==*}') != '${pin#*==}')" \
    2>/dev/null || missing_py+=("$pin")
done
if [ ${#missing_py[@]} -gt 0 ]; then
  python3 -m pip install -q "${missing_py[@]}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "${missing_py[@]}"
fi

# KafkaJS, pinned by broker/tests/kafka/package-lock.json, next to its test script.
if [ ! -d broker/tests/kafka/node_modules/kafkajs ]; then
  npm ci --prefix broker/tests/kafka --silent --no-audit --no-fund
fi

# Lint gates: formatting and clippy with warnings denied, before anything runs.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

cargo build --workspace --bins --locked
cargo test --workspace --locked

# Fault injection over a real 3-broker cluster (weir-chaos, issue 14): seed 7 for 180 s on
# the debug binaries built above (about 4 minutes), at least 100,000 acknowledged records
# and 10 faults including F1, F2, F3 and F5, zero checker violations. Its run folder (fault
# log, history, broker logs) stays in target/chaos-runs/ci-seed-7 for a failure's analysis.
benches/chaos.sh ci
