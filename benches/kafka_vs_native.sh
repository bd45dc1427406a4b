#!/usr/bin/env bash
# Kafka listener vs native listener on one release broker: records/s of 100-byte records
# and broker CPU seconds per million records, for
#   native: weir-perf produce/consume (Rust, native protocol)
#   kafka:  kcat -P -l / kcat -C (librdkafka 2.0.2, C) and benches/kafka_listener.py
#           (confluent-kafka: librdkafka 2.16 driven from Python, client-bound)
# Usage: benches/kafka_vs_native.sh [RECORDS] [ROUNDS]   (needs a release build:
#   cargo build --release -p weir-broker -p weir-benches --bin weir-broker --bin weir-perf)
# Loopback only; the broker is started here with a temp data dir and stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
ROUNDS=${2:-3}
DIR=$(mktemp -d)
REC="$DIR/records.txt"
python3 -c "import sys; open('$REC','wb').write((b'x'*99+b'\n')*$N)"
target/release/weir-broker --data-dir "$DIR/data" --listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 >"$DIR/broker.log" 2>&1 &
BP=$!
trap 'kill $BP 2>/dev/null; wait $BP 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do [ -s "$DIR/data/broker.addr" ] && break; sleep 0.1; done
NAT=$(cat "$DIR/data/broker.addr")
KAF=$(cat "$DIR/data/kafka.addr")
cpu() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$BP/stat"; }
now() { date +%s.%N; }
report() { # name start end cpu0 cpu1
  awk -v n="$N" -v s="$2" -v e="$3" -v a="$4" -v b="$5" -v name="$1" \
    'BEGIN { printf "%-26s %10.0f records/s   broker cpu %.2f s per 1M records\n", name, n/(e-s), (b-a)*1e6/n }'
}
for r in $(seq "$ROUNDS"); do
  echo "--- round $r ($N records of 100 B, 4 partitions, acks=1)"
  c0=$(cpu); s=$(now)
  target/release/weir-perf produce --bootstrap "$NAT" --topic "nat$r" --records "$N" \
    --record-size 100 --partitions 4 --acks 1 >/dev/null
  e=$(now); c1=$(cpu); report "native produce (weir-perf)" "$s" "$e" "$c0" "$c1"
  c0=$(cpu); s=$(now)
  target/release/weir-perf consume --bootstrap "$NAT" --topic "nat$r" --records "$N" \
    --record-size 100 --partitions 4 >/dev/null
  e=$(now); c1=$(cpu); report "native consume (weir-perf)" "$s" "$e" "$c0" "$c1"
  python3 -c "
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({'bootstrap.servers': '$KAF'})
[f.result() for f in a.create_topics([NewTopic('kc$r', 4, 1)]).values()]"
  c0=$(cpu); s=$(now)
  kcat -b "$KAF" -P -t "kc$r" -l "$REC" -X acks=1 -X linger.ms=5 -X batch.size=1000000
  e=$(now); c1=$(cpu); report "kafka produce (kcat)" "$s" "$e" "$c0" "$c1"
  c0=$(cpu); s=$(now)
  kcat -b "$KAF" -C -t "kc$r" -o beginning -e -q >/dev/null
  e=$(now); c1=$(cpu); report "kafka consume (kcat)" "$s" "$e" "$c0" "$c1"
done
echo "--- confluent-kafka (Python; client-bound)"
python3 benches/kafka_listener.py "$KAF" --records "$N" --record-size 100 --partitions 4 --acks 1
