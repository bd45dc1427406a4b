"""Produce and consume throughput through Weir's Kafka listener with confluent-kafka
(librdkafka), for the numbers in benches/README.md ("Kafka listener").

    python3 benches/kafka_listener.py BOOTSTRAP --records 1000000 --record-size 100 \
        --partitions 4 [--acks 1] [--linger-ms 5]

Produce: one Producer sends every record as fast as librdkafka's queue allows (polling
for delivery reports when the queue is full), then flushes; records/s = N / (last
delivery - first send). Consume: one Consumer assigned to every partition from offset 0,
reading with the batch API until N records arrived. Bounded by --timeout-s. Only
loopback bootstraps are accepted.
"""
import argparse
import ipaddress
import socket
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def loopback(bootstrap):
    host = bootstrap.rsplit(":", 1)[0]
    return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--record-size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--acks", default="1")
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--timeout-s", type=float, default=300)
    a = ap.parse_args()
    if not loopback(a.bootstrap):
        sys.exit("only loopback bootstraps are allowed")
    topic = "bench-" + uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    for f in admin.create_topics([NewTopic(topic, a.partitions, 1)]).values():
        f.result()

    value = b"x" * a.record_size
    p = Producer({"bootstrap.servers": a.bootstrap, "acks": a.acks,
                  "linger.ms": a.linger_ms, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 1_000_000,
                  "queue.buffering.max.kbytes": 1_048_576})
    deadline = time.monotonic() + a.timeout_s
    start = time.monotonic()
    for i in range(a.records):
        while True:
            try:
                p.produce(topic, value, partition=i % a.partitions)
                break
            except BufferError:
                p.poll(0.001)
        if time.monotonic() > deadline:
            sys.exit("produce timed out")
    left = p.flush(a.timeout_s)
    produce_s = time.monotonic() - start
    if left:
        sys.exit(f"{left} records undelivered")

    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "bench-" + topic,
                  "enable.auto.commit": False, "fetch.max.bytes": 52428800,
                  "max.partition.fetch.bytes": 10485760})
    c.assign([TopicPartition(topic, part, 0) for part in range(a.partitions)])
    got = 0
    start = time.monotonic()
    while got < a.records and time.monotonic() < deadline:
        for m in c.consume(num_messages=10000, timeout=1.0):
            if m.error() is None:
                got += 1
    consume_s = time.monotonic() - start
    c.close()
    if got < a.records:
        sys.exit(f"consumed {got} of {a.records}")
    print(f"produce: {a.records} records of {a.record_size} B in {produce_s:.2f} s = "
          f"{a.records / produce_s:,.0f} records/s")
    print(f"consume: {a.records} records in {consume_s:.2f} s = "
          f"{a.records / consume_s:,.0f} records/s")


if __name__ == "__main__":
    main()
