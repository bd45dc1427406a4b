#!/usr/bin/env bash
# Runs every test Weir has, on a fresh machine: installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the end-to-end tests drive for real (none needed yet beyond Rust).
need_pkgs=()
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}"
fi

cargo build --workspace --bins --locked
cargo test --workspace --locked
