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
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Lint gates: formatting and clippy with warnings denied, before anything runs.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

cargo build --workspace --bins --locked
cargo test --workspace --locked
