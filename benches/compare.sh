#!/usr/bin/env bash
# Side-by-side comparison of Weir, Redis Streams and NATS JetStream on one machine.
#
#   benches/compare.sh                      # all workloads, full scale, fsync every second
#   WORKLOAD_SCALE=0.1 benches/compare.sh   # 10% of the records (quick run)
#   FSYNC=always benches/compare.sh         # fsync before every acknowledgement
#
# Env: WORKLOAD_SCALE (default 1), FSYNC (everysec | always), SYSTEMS ("weir redis nats"),
# WORKLOADS ("1 2 3 4 5 5-none", plus "4-200k" on request: w4 at 200k records/s, and "4-300":
# w4 for 300 s over 8 partitions with
# 2,000 idle connections, issue 16 item 7; e.g. WORKLOADS="5 5-none" for just w5), OUT (results dir,
# default a new dir under /tmp), BIN_DIR (use weir-broker and weir-perf from there, no build),
# ZSTD_LEVEL (Weir's zstd level in w5; default: the client's, 3 as in Kafka), ZERO_COPY (on |
# off: Weir's fetch.zero_copy, sendfile of cached records; default on, as the broker's).
# Servers run one at a time on free loopback ports with temp data dirs; only the PIDs this
# script started are stopped (trap on EXIT). See benches/README.md for what each number is.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=${WORKLOAD_SCALE:-1}
FSYNC=${FSYNC:-everysec}
SYSTEMS=${SYSTEMS:-"weir redis nats"}
WORKLOADS=${WORKLOADS:-"1 2 3 4 5 5-none"}
TMP=$(mktemp -d /tmp/weir-compare.XXXXXX)
OUT=${OUT:-$TMP/results}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
SERVER_PID=""
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

case "$FSYNC" in everysec | always) ;; *)
    echo "FSYNC must be everysec or always" >&2
    exit 2
    ;;
esac

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$TMP/weir" "$TMP/redis" "$TMP/nats"
}
trap cleanup EXIT

need() { # need CMD DEBIAN-PACKAGE
    command -v "$1" >/dev/null && return 0
    if [[ $(id -u) -ne 0 ]]; then
        echo "$1 missing: apt-get install $2 (as root)" >&2
        exit 2
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null
}
[[ $SYSTEMS == *redis* ]] && need redis-server redis-server && need redis-cli redis-tools
[[ $SYSTEMS == *nats* ]] && need nats-server nats-server
need python3 python3

if [[ -n ${BIN_DIR:-} ]]; then
    # Prebuilt weir-broker and weir-perf (e.g. a before/after pair built elsewhere).
    PERF=$BIN_DIR/weir-perf
    BROKER=$BIN_DIR/weir-broker
else
    echo "building (release)..." >&2
    (cd "$ROOT" && cargo build -q --release -p weir-broker -p weir-benches --bin weir-broker --bin weir-perf)
    PERF=$ROOT/target/release/weir-perf
    BROKER=$ROOT/target/release/weir-broker
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # wait_port PORT
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# Records per workload, scaled.
scaled() { python3 -c "import sys; print(max(1000, int($1 * float(sys.argv[1]))))" "$SCALE"; }
N1=$(scaled 5000000)
N5=$(scaled 1000000)
E2E_SECONDS=$(python3 -c "import sys; print(max(5, int(30 * float(sys.argv[1]))))" "$SCALE")
N4=$((50000 * E2E_SECONDS))
TOPIC_CONFIG=()
NATS_NOTE=""

start_weir() {
    mkdir -p "$TMP/weir"
    local flush
    if [[ $FSYNC == always ]]; then
        flush="flush_messages = 1
flush_ms = -1"
        TOPIC_CONFIG=(--topic-config flush.messages=1)
    else
        # Redis everysec: fsync at most a second after the write.
        flush="flush_messages = 9223372036854775807
flush_ms = 1000
flush_scheduler_interval_ms = 200"
        TOPIC_CONFIG=()
    fi
    # Only written when off, so BIN_DIR builds from before the setting still start.
    zero_copy=""
    [[ ${ZERO_COPY:-on} == off ]] && zero_copy="fetch_zero_copy = false"
    cat >"$TMP/weir/broker.toml" <<TOML
[server]
$zero_copy
listen = "127.0.0.1:$PORT"
metrics_listen = "127.0.0.1:0"
data_dir = "$TMP/weir/data"
[topics]
default_partitions = 1
[log]
$flush
TOML
    "$BROKER" --config "$TMP/weir/broker.toml" 2>"$OUT/weir-broker.log" &
    SERVER_PID=$!
}
start_redis() {
    mkdir -p "$TMP/redis"
    redis-server --bind 127.0.0.1 --port "$PORT" --dir "$TMP/redis" --appendonly yes \
        --appendfsync "$FSYNC" --save '' --daemonize no --logfile "$OUT/redis.log" &
    SERVER_PID=$!
}
start_nats() {
    mkdir -p "$TMP/nats"
    local sync=1s
    [[ $FSYNC == always ]] && sync=always
    cat >"$TMP/nats/nats.conf" <<CONF
listen: 127.0.0.1:$PORT
jetstream {
  store_dir: "$TMP/nats/store"
  sync_interval: $sync
}
CONF
    # `-t` checks the config and exits: waiting to see whether the server dies was racy on
    # a loaded machine (a slow start looked like support, then the port never opened).
    if ! nats-server -c "$TMP/nats/nats.conf" -t >/dev/null 2>&1; then
        # nats-server before 2.10 has no sync_interval: it syncs on its own schedule.
        NATS_NOTE="nats-server $(nats-server --version | awk '{print $2}') has no sync_interval: default syncing (less durable than the others)"
        nats-server -js -a 127.0.0.1 -p "$PORT" --store_dir "$TMP/nats/store" -l "$OUT/nats.log" &
        SERVER_PID=$!
    else
        nats-server -c "$TMP/nats/nats.conf" -l "$OUT/nats.log" &
        SERVER_PID=$!
        NATS_NOTE="nats sync_interval=$sync"
    fi
}

run_perf() { # perf SYSTEM WORKLOAD SUBCOMMAND ARGS...
    local system=$1 label=$2 sub=$3
    shift 3
    local extra=()
    [[ $system == weir ]] && extra=("${TOPIC_CONFIG[@]}")
    echo "  $system $label: $sub $*" >&2
    if ! "$PERF" "$sub" --system "$system" --bootstrap "127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
        --workload "$label" --output json --duration "${RUN_LIMIT:-180}" "${extra[@]}" "$@" >>"$RESULTS" 2>>"$OUT/perf-errors.log"; then
        echo "    ($system $label failed, see $OUT/perf-errors.log)" >&2
    fi
}
has() { [[ " $WORKLOADS " == *" $1 "* ]]; }

drop_caches() {
    sync
    if [[ $(id -u) -eq 0 ]] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
        return 0
    fi
    return 1
}

for system in $SYSTEMS; do
    PORT=$(free_port)
    echo "== $system on 127.0.0.1:$PORT (fsync $FSYNC)" >&2
    "start_$system"
    wait_port "$PORT" || { echo "$system did not start; logs in $OUT" >&2; exit 1; }
    if has 1 || has 3; then
        run_perf "$system" w1 produce --topic w1 --records "$N1" --producers 1 --partitions 1 --acks 1
    fi
    if has 2; then
        run_perf "$system" w2 produce --topic w2 --records "$N1" --producers 4 --partitions 8 --acks all
    fi
    if has 3; then
        run_perf "$system" w3-warm consume --topic w1 --records "$N1" --partitions 1
        if drop_caches; then
            run_perf "$system" w3-cold consume --topic w1 --records "$N1" --partitions 1
        fi
    fi
    if has 4; then
        run_perf "$system" w4 end-to-end --topic w4 --records "$N4" --rate 50000 --partitions 1 \
            --producers 1 --acks 1 --linger-ms 0
    fi
    if has 4-200k; then
        # Issue 16 asks for w4's table at four times the rate as well.
        run_perf "$system" w4-200k end-to-end --topic w4-200k --records "$((N4 * 4))" --rate 200000 \
            --partitions 1 --producers 1 --acks 1 --linger-ms 0
    fi
    if has 4-300; then
        # Periodic stalls only show in long runs: 300 s, 8 partitions, 2,000 idle client
        # connections, and a per-second timeline (Weir) to line a slow second up with the
        # page cache and the server's CPU.
        timeline=()
        [[ $system == weir ]] && timeline=(--timeline "$OUT/$system-w4-300.timeline.jsonl")
        RUN_LIMIT=300 run_perf "$system" w4-300 end-to-end --topic w4-300 --records 15000000 \
            --rate 50000 --partitions 8 --producers 1 --acks 1 --linger-ms 0 \
            --idle-connections 2000 "${timeline[@]}"
    fi
    if has 5; then
        level=()
        [[ $system == weir && -n ${ZSTD_LEVEL:-} ]] && level=(--zstd-level="$ZSTD_LEVEL")
        run_perf "$system" w5 produce --topic w5 --records "$N5" --record-size 1024 --compression zstd \
            "${level[@]}" --producers 1 --partitions 1 --acks 1
    fi
    if has 5-none; then
        # w5 on the same bytes for everyone: Redis and NATS never compress.
        run_perf "$system" w5-none produce --topic w5-none --records "$N5" --record-size 1024 \
            --compression none --producers 1 --partitions 1 --acks 1
    fi
    stop_server
done

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cores: $(nproc)  cpu: $CPU"
echo "fsync: $FSYNC  scale: $SCALE (w1/w2/w3: $N1 records, w4: $N4 at 50k/s, w5, w5-none: $N5)  load avg at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n $NATS_NOTE ]] && echo "note: $NATS_NOTE"
python3 - "$RESULTS" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    rows.setdefault(r["workload"], {})[r["system"]] = r
systems = ["weir", "redis", "nats"]
def cell(r, key):
    if r is None:
        return None
    if key == "rps":
        return r["records_per_sec"]
    if key == "p50":
        return r["latency_ms"]["p50"]
    if key == "p99":
        return r["latency_ms"]["p99"]
    if key == "p999":
        return r["latency_ms"]["p999"]
    if key == "cpu":
        return r.get("server_cpu_s_per_million")
def fmt(v, key):
    if v is None:
        return "-"
    return f"{v:,.0f}" if key == "rps" else f"{v:.3f}"
def ratio(a, b, key):
    if a is None or b is None or a == 0 or b == 0:
        return "-"
    # >1 means Weir is better: more records/s, less latency or CPU.
    return f"{a / b:.2f}x" if key == "rps" else f"{b / a:.2f}x"
metrics = [("rps", "records/s"), ("p50", "p50 ms"), ("p99", "p99 ms"), ("p999", "p999 ms"), ("cpu", "srv cpu-s/M")]
print("| workload | metric | weir | redis | nats | weir vs redis | weir vs nats |")
print("|---|---|---:|---:|---:|---:|---:|")
for w in sorted(rows):
    for key, name in metrics:
        if key == "p50" and not w.startswith("w4"):
            continue
        vals = {s: cell(rows[w].get(s), key) for s in systems}
        print(f"| {w} | {name} | " + " | ".join(fmt(vals[s], key) for s in systems)
              + f" | {ratio(vals['weir'], vals['redis'], key)} | {ratio(vals['weir'], vals['nats'], key)} |")
errs = [(w, s, r.get("errors", 0)) for w in rows for s, r in rows[w].items() if r.get("errors", 0)]
for w, s, e in errs:
    print(f"warning: {s} {w} had {e} failed records")
PY
echo "raw results: $RESULTS" >&2
