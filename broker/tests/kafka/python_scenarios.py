"""kafka-python and aiokafka scenarios against Weir's Kafka listener.

Run by broker/tests/kafka_clients.rs as `python3 python_scenarios.py BOOTSTRAP SCENARIO`.
Each scenario asserts, prints "ok" and exits 0. Waits poll a condition with a deadline.
"""
import asyncio
import sys
import threading
import time
import uuid

BOOT = sys.argv[1]
DEADLINE_S = 60


def wait_for(what, cond):
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def kp_admin():
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=BOOT, client_id="kp-admin")


def kp_create(name, partitions, configs=None):
    from kafka.admin import NewTopic
    a = kp_admin()
    a.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    a.close()


def kafka_python_producer_group():
    """Idempotent producer (kafka-python 3's default), then a 2-member group."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    t = "kp-" + uuid.uuid4().hex[:8]
    kp_create(t, 4)
    p = KafkaProducer(bootstrap_servers=BOOT, acks="all", linger_ms=5)
    assert p.config.get("enable_idempotence", True), "idempotence got switched off"
    futures = [p.send(t, key=b"k%d" % (i % 7), value=b"v%d" % i) for i in range(200)]
    p.flush(30)
    for f in futures:
        f.get(timeout=10)
    p.close()

    gid = "kp-g-" + uuid.uuid4().hex[:6]
    consumers = [KafkaConsumer(t, bootstrap_servers=BOOT, group_id=gid,
                               auto_offset_reset="earliest", enable_auto_commit=False,
                               session_timeout_ms=10000, heartbeat_interval_ms=500)
                 for _ in range(2)]
    # One thread per consumer, as applications run them. Polling both from one thread
    # starves each of them for a poll timeout at a time, and kafka-python 3.0.12 then
    # throws away a join that completed between two polls and joins again, which makes
    # the other member rebalance too: the pair can rejoin forever without consuming.
    seen = set()
    lock = threading.Lock()
    end = time.monotonic() + DEADLINE_S

    def run(c):
        while time.monotonic() < end:
            with lock:
                # Done once everything was read and both members hold partitions.
                if len(seen) >= 200 and all(x.assignment() for x in consumers):
                    return
            for tp, msgs in c.poll(timeout_ms=200).items():
                with lock:
                    for m in msgs:
                        seen.add((tp.partition, m.offset))
                c.commit()

    threads = [threading.Thread(target=run, args=(c,)) for c in consumers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(seen) == 200, f"group read {len(seen)} of 200"
    owned = sorted(tp.partition for c in consumers for tp in c.assignment())
    for c in consumers:
        c.close()
    assert owned == [0, 1, 2, 3], owned
    c = KafkaConsumer(bootstrap_servers=BOOT, group_id=gid, enable_auto_commit=False)
    total = sum(c.committed(TopicPartition(t, p)) or 0 for p in range(4))
    c.close()
    assert total == 200, total


def kafka_python_admin():
    from kafka.admin import ConfigResource, ConfigResourceType
    a = kp_admin()
    t = "kp-admin-" + uuid.uuid4().hex[:8]
    kp_create(t, 2, {"retention.ms": "3600000"})
    assert t in a.list_topics()
    res = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)])
    text = str(res)
    assert "retention.ms" in text and "3600000" in text, text
    groups = a.list_groups()
    assert isinstance(groups, list)
    a.delete_topics([t])
    wait_for("topic deleted", lambda: t not in a.list_topics())
    a.close()


def kafka_python_compacted():
    """A compacted topic written by kafka-python keeps the last value of each key."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    t = "kp-compact-" + uuid.uuid4().hex[:8]
    kp_create(t, 1, {"cleanup.policy": "compact", "segment.bytes": "1024",
                     "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"})
    p = KafkaProducer(bootstrap_servers=BOOT, acks="all", batch_size=200, linger_ms=0)
    for round_ in range(20):
        for k in range(5):
            p.send(t, key=b"key%d" % k, value=b"round%d" % round_).get(timeout=10)
    p.close()

    def latest_values():
        c = KafkaConsumer(bootstrap_servers=BOOT, enable_auto_commit=False,
                          consumer_timeout_ms=1000)
        tp = TopicPartition(t, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        rows = [(m.key, m.value) for m in c]
        c.close()
        return rows

    def compacted():
        rows = latest_values()
        last = {}
        for k, v in rows:
            last[k] = v
        # Every key still reads its last value, and fewer records remain.
        return len(rows) < 100 and last == {b"key%d" % k: b"round19" for k in range(5)}
    wait_for("the cleaner to compact the topic", compacted)


async def aiokafka_producer_group():
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition
    t = "aio-" + uuid.uuid4().hex[:8]
    kp_create(t, 2)
    p = AIOKafkaProducer(bootstrap_servers=BOOT, enable_idempotence=True)
    await p.start()
    try:
        for i in range(100):
            await p.send_and_wait(t, key=b"k%d" % (i % 5), value=b"v%d" % i)
    finally:
        await p.stop()
    gid = "aio-g-" + uuid.uuid4().hex[:6]
    c = AIOKafkaConsumer(t, bootstrap_servers=BOOT, group_id=gid,
                         auto_offset_reset="earliest", enable_auto_commit=False)
    await c.start()
    seen = set()
    try:
        end = time.monotonic() + DEADLINE_S
        while len(seen) < 100 and time.monotonic() < end:
            batch = await c.getmany(timeout_ms=200)
            for tp, msgs in batch.items():
                for m in msgs:
                    seen.add((tp.partition, m.offset))
            await c.commit()
        assert len(seen) == 100, f"read {len(seen)} of 100"
        total = 0
        for part in range(2):
            total += await c.committed(TopicPartition(t, part)) or 0
        assert total == 100, total
    finally:
        await c.stop()


def kafka_python_custom_assignor():
    """The group leader's client computes the plan (Kafka's classic protocol): a custom
    assignor that gives every partition to one member, with user data, is what both
    members get, user data included. Weir's own assignor would split the partitions."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.coordinator.assignors.abstract import (
        AbstractPartitionAssignor, ConsumerProtocolAssignment, ConsumerProtocolSubscription)

    received = []

    class AllToOne(AbstractPartitionAssignor):
        name = "weir-all-to-one"
        version = 0

        @classmethod
        def assign(cls, cluster, members):
            topics = sorted({t for m in members for t in m.metadata.topics})
            chosen = max(m.member_id for m in members)
            plan = [(t, sorted(cluster.partitions_for_topic(t) or [])) for t in topics]
            return {m.member_id: ConsumerProtocolAssignment(
                        cls.version, plan if m.member_id == chosen else [], b"weir-userdata")
                    for m in members}

        @classmethod
        def metadata(cls, topics):
            return ConsumerProtocolSubscription(cls.version, list(topics), b"")

        @classmethod
        def on_assignment(cls, assignment, generation):
            received.append(assignment.user_data)

    t = "kp-custom-" + uuid.uuid4().hex[:8]
    kp_create(t, 4)
    p = KafkaProducer(bootstrap_servers=BOOT, acks="all")
    for i in range(40):
        p.send(t, value=b"v%d" % i)
    p.flush(30)
    p.close()
    gid = "kp-custom-g-" + uuid.uuid4().hex[:6]
    consumers = [KafkaConsumer(t, bootstrap_servers=BOOT, group_id=gid,
                               auto_offset_reset="earliest", enable_auto_commit=False,
                               session_timeout_ms=10000, heartbeat_interval_ms=500,
                               partition_assignment_strategy=[AllToOne])
                 for _ in range(2)]
    lock = threading.Lock()
    end = time.monotonic() + DEADLINE_S
    state = {"done": False}

    def settled():
        sizes = sorted(len(x.assignment()) for x in consumers)
        return sizes == [0, 4]

    def run(c):
        while time.monotonic() < end and not state["done"]:
            c.poll(timeout_ms=200)
            with lock:
                if settled():
                    state["done"] = True

    threads = [threading.Thread(target=run, args=(c,)) for c in consumers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    sizes = sorted(len(x.assignment()) for x in consumers)
    # DescribeGroups shows each member's assignment as the leader wrote it.
    admin = kp_admin()
    info = admin.describe_groups([gid])[gid]
    admin.close()
    for c in consumers:
        c.close()
    assert sizes == [0, 4], f"the leader's plan was not used: {sizes}"
    assert received and all(u == b"weir-userdata" for u in received), received
    def field(obj, name):
        return obj[name] if isinstance(obj, dict) else getattr(obj, name)

    described = [field(m, "member_assignment") for m in info["members"]]
    assert len(described) == 2, info
    # to_dict() renders the bytes as text.
    assert all(field(a, "user_data") in (b"weir-userdata", "weir-userdata")
               for a in described), described
    held = sorted(len(tp["partitions"]) for a in described
                  for tp in field(a, "assigned_partitions"))
    assert held == [4], described


SCENARIOS = {
    "kafka_python_producer_group": kafka_python_producer_group,
    "kafka_python_admin": kafka_python_admin,
    "kafka_python_compacted": kafka_python_compacted,
    "kafka_python_custom_assignor": kafka_python_custom_assignor,
    "aiokafka_producer_group": lambda: asyncio.run(aiokafka_producer_group()),
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[2]]()
    print("ok")
