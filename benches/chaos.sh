#!/usr/bin/env bash
# weir-chaos runs (fault injection over 3 real brokers on loopback; see benches/README.md).
#
#   benches/chaos.sh ci                    the short run test.sh does: debug binaries, seed 7,
#                                          180 s, >= 100,000 acknowledged records, >= 10 faults
#                                          including F1, F2, F3, F5, zero violations
#   benches/chaos.sh campaign [N] [SECS]   seeds 1..N (default 10) of the standard schedule
#                                          (default 300 s each); prints a results table and
#                                          keeps every run folder under target/chaos-runs/
#
# CHAOS_PROFILE=release builds and runs release binaries (default: debug, which is what CI
# has already built); CHAOS_BIN_DIR=dir runs the weir-chaos and weir-broker copied there
# instead, without building. Runs need root for the capped tmpfs of the disk-full fault (F8);
# without it F8 is skipped and the summary says so.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${CHAOS_PROFILE:-debug}
flag=""
[ "$profile" = release ] && flag="--release"
if [ -n "${CHAOS_BIN_DIR:-}" ]; then
  # Prebuilt weir-chaos and weir-broker (a copy), so a long campaign is not changed under
  # its feet by builds in this tree.
  bin=$CHAOS_BIN_DIR/weir-chaos
else
  # The same build as test.sh (whole workspace), so under test.sh this is a no-op.
  cargo build --locked $flag --workspace --bins
  bin=target/$profile/weir-chaos
fi
out=target/chaos-runs
mkdir -p "$out"

case "${1:-campaign}" in
  ci)
    seed=${CHAOS_SEED:-7}
    rm -rf "$out/ci-seed-$seed"
    "$bin" --seed "$seed" --duration 180 --dir "$out/ci-seed-$seed" --output json \
      --require-acked 100000 --require-faults 10 --require-kinds F1,F2,F3,F5
    ;;
  campaign)
    n=${2:-10}
    secs=${3:-300}
    results="$out/campaign-$(date -u +%Y%m%dT%H%M%S).jsonl"
    failed=0
    for seed in $(seq 1 "$n"); do
      dir="$out/campaign-seed-$seed"
      rm -rf "$dir"
      echo "== seed $seed ($secs s) -> $dir" >&2
      if "$bin" --seed "$seed" --duration "$secs" --dir "$dir" --output json >"$dir.out" 2>"$dir.err"; then
        # A clean run's data directories are not evidence of anything; they take ~300 MB.
        rm -rf "$dir"/broker-*/data-final
      else
        failed=$((failed + 1))
      fi
      tail -n 1 "$dir.out" >>"$results"
      tail -n 1 "$dir.out" >&2
    done
    python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("| seed | s | acknowledged | lost | duplicated | divergent | faults | failover p50 / max (ms) | violations |")
print("|---:|---:|---:|---:|---:|---:|---|---|---|")
for r in rows:
    faults = ", ".join(f"{k}×{v}" for k, v in sorted(r["faults"].items(), key=lambda kv: int(kv[0][1:])))
    fo = r["failover_ms"]
    v = "; ".join(r["violations"][:3]) or "none"
    print(f"| {r['seed']} | {r['duration_s']} | {r['acknowledged']:,} | {r['lost']} | {r['duplicated']} | {r['divergent']} "
          f"| {sum(r['faults'].values())} ({faults}) | {fo['p50']} / {fo['max']} | {v} |")
tot = sum(r["acknowledged"] for r in rows)
inj = sum(sum(r["faults"].values()) for r in rows)
print(f"\n{len(rows)} runs, {tot:,} acknowledged records checked, {inj} faults injected, "
      f"{sum(1 for r in rows if r['violations'])} runs with violations.")
PY
    [ "$failed" -eq 0 ]
    ;;
  *)
    echo "usage: benches/chaos.sh ci | campaign [N] [SECS]" >&2
    exit 2
    ;;
esac
