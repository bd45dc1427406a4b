"""confluent-kafka (librdkafka) scenarios against Weir's Kafka listener.

Run by broker/tests/kafka_clients.rs as `python3 confluent_scenarios.py BOOTSTRAP SCENARIO`.
Each scenario asserts, prints "ok" and exits 0; any failure exits non-zero with a traceback.
Waits poll a condition with a deadline; nothing sleeps and then asserts.
"""
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition, KafkaException
from confluent_kafka import TopicCollection
from confluent_kafka.admin import (AdminClient, NewTopic, ConfigResource, ConfigEntry,
                                   AlterConfigOpType, NewPartitions, OffsetSpec,
                                   ConfigSource)

BOOT = sys.argv[1]
DEADLINE_S = 60


def admin():
    return AdminClient({"bootstrap.servers": BOOT})


def create(name, partitions, config=None):
    a = admin()  # must outlive the futures
    fs = a.create_topics([NewTopic(name, partitions, 1, config=config or {})],
                               operation_timeout=10)
    for f in fs.values():
        f.result()


def wait_for(what, cond):
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def produce(topic, n, conf=None, key=lambda i: f"k{i % 10}".encode()):
    p = Producer({"bootstrap.servers": BOOT, **(conf or {})})
    errors = []
    for i in range(n):
        p.produce(topic, key=key(i), value=f"v{i}".encode(),
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        p.poll(0)
    assert p.flush(30) == 0, "undelivered messages"
    assert not errors, errors
    return p


def read_all(topic, partitions, expect):
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "reader-" + uuid.uuid4().hex,
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    end = time.monotonic() + DEADLINE_S
    while len(got) < expect and time.monotonic() < end:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m)
    c.close()
    assert len(got) == expect, f"read {len(got)} of {expect}"
    return got


def idempotent():
    t = "cf-idem-" + uuid.uuid4().hex[:8]
    create(t, 3)
    produce(t, 3000, {"enable.idempotence": True, "linger.ms": 5,
                      "max.in.flight.requests.per.connection": 5})
    got = read_all(t, 3, 3000)
    # Per key, values arrive in production order (one key -> one partition).
    last = {}
    for m in got:
        i = int(m.value()[1:])
        k = m.key()
        assert last.get(k, -1) < i, f"reordered {k}: {last.get(k)} then {i}"
        last[k] = i
    offsets = sorted((m.partition(), m.offset()) for m in got)
    assert len(set(offsets)) == 3000, "duplicate offsets"


def group(strategy):
    t = "cf-group-" + uuid.uuid4().hex[:8]
    create(t, 6)
    produce(t, 600)
    gid = "g-" + strategy + "-" + uuid.uuid4().hex[:6]
    seen = set()
    lock = threading.Lock()
    stop = threading.Event()
    consumers = []
    # A consumer's assignment is read by its own thread (assignment() blocks while another
    # thread is inside poll()).
    owned = [[], [], []]

    def member(i):
        c = Consumer({"bootstrap.servers": BOOT, "group.id": gid,
                      "partition.assignment.strategy": strategy,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                      "heartbeat.interval.ms": 500, "enable.auto.commit": True,
                      "auto.commit.interval.ms": 200,
                      "client.id": f"member-{i}", **({"debug": "cgrp"} if len(sys.argv) > 3 else {})})
        consumers.append(c)
        c.subscribe([t])
        while not stop.is_set():
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                with lock:
                    seen.add((m.partition(), m.offset()))
            mine = sorted(tp.partition for tp in c.assignment())
            with lock:
                owned[i] = mine

    threads = [threading.Thread(target=member, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    try:
        wait_for("every record consumed by the group", lambda: len(seen) >= 600)

        def balanced():
            with lock:
                return all(len(o) == 2 for o in owned)
        wait_for("2 partitions per member", balanced)
        with lock:
            parts = sorted(p for o in owned for p in o)
        assert parts == list(range(6)), parts

        # The group is visible to admin clients.
        a = admin()
        listed = a.list_consumer_groups().result(timeout=10)
        assert gid in [g.group_id for g in listed.valid], listed.valid
        d = a.describe_consumer_groups([gid])[gid].result(timeout=10)
        assert len(d.members) == 3, d
        assigned = sorted(tp.partition for mem in d.members
                          for tp in mem.assignment.topic_partitions)
        assert assigned == list(range(6)), assigned
    finally:
        stop.set()
        for th in threads:
            th.join()
    for c in consumers:
        c.close()
    # Committed offsets survive the group: a new consumer of the group reads them.
    c = Consumer({"bootstrap.servers": BOOT, "group.id": gid})
    committed = c.committed([TopicPartition(t, p) for p in range(6)], timeout=10)
    c.close()
    assert sum(tp.offset for tp in committed) == 600, committed
    assert len(seen) == 600


def offsets():
    t = "cf-offsets-" + uuid.uuid4().hex[:8]
    create(t, 1)
    p = Producer({"bootstrap.servers": BOOT})
    base = 1_700_000_000_000
    for i in range(10):
        p.produce(t, value=b"x%d" % i, timestamp=base + i * 1000)
    # Out of timestamp order: offset 10 carries the largest timestamp.
    p.produce(t, value=b"late", timestamp=base + 50_000)
    p.produce(t, value=b"early", timestamp=base + 500)
    assert p.flush(30) == 0
    from confluent_kafka.admin import OffsetSpec
    tp = TopicPartition(t, 0)
    a = admin()  # kept alive until the future resolves
    newest = a.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(timeout=10)
    assert (newest.offset, newest.timestamp) == (10, base + 50_000), newest
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "off-" + uuid.uuid4().hex})
    found = c.offsets_for_times([TopicPartition(t, 0, base + 4500)], timeout=10)
    assert found[0].offset == 5, found
    late = c.offsets_for_times([TopicPartition(t, 0, base + 99_000)], timeout=10)
    assert late[0].offset in (-1, 12), late  # librdkafka maps "none" to the end
    lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), timeout=10)
    assert (lo, hi) == (0, 12), (lo, hi)
    c.commit(offsets=[TopicPartition(t, 0, 7, "meta-data")], asynchronous=False)
    got = c.committed([TopicPartition(t, 0)], timeout=10)
    assert got[0].offset == 7, got
    assert got[0].metadata == "meta-data", got
    c.close()


def admin_ops():
    a = admin()
    t = "cf-admin-" + uuid.uuid4().hex[:8]
    create(t, 2, {"retention.ms": "3600000"})
    md = a.list_topics(timeout=10)
    assert t in md.topics and len(md.topics[t].partitions) == 2
    # Creating it again fails with TOPIC_ALREADY_EXISTS.
    f = a.create_topics([NewTopic(t, 2, 1)])[t]
    try:
        f.result()
        raise AssertionError("second create succeeded")
    except KafkaException as e:
        assert e.args[0].name() == "TOPIC_ALREADY_EXISTS", e
    res = ConfigResource(ConfigResource.Type.TOPIC, t)
    cfg = a.describe_configs([res])[res].result(timeout=10)
    assert cfg["retention.ms"].value == "3600000", cfg["retention.ms"]
    assert "cleanup.policy" in cfg
    inc = ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", "7200000",
                    incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([inc])[inc].result(timeout=10)
    cfg = a.describe_configs([res])[res].result(timeout=10)
    assert cfg["retention.ms"].value == "7200000", cfg["retention.ms"]
    # Legacy AlterConfigs replaces the whole set of overrides: retention.ms goes back to
    # its default, segment.ms is set.
    legacy = ConfigResource(ConfigResource.Type.TOPIC, t, set_config={"segment.ms": "600000"})
    a.alter_configs([legacy])[legacy].result(timeout=10)
    cfg = a.describe_configs([res])[res].result(timeout=10)
    assert cfg["segment.ms"].value == "600000", cfg["segment.ms"]
    assert cfg["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value, \
        cfg["retention.ms"]
    cluster = a.describe_cluster().result(timeout=10)
    assert len(cluster.nodes) == 1 and cluster.controller.id == 0, cluster
    described = a.describe_topics(TopicCollection([t]))[t].result(timeout=10)
    assert len(described.partitions) == 2, described
    # DeleteRecords moves the log start; ListOffsets (admin) sees it.
    p = Producer({"bootstrap.servers": BOOT})
    for i in range(5):
        p.produce(t, value=b"r%d" % i, partition=0)
    assert p.flush(30) == 0
    deleted = a.delete_records([TopicPartition(t, 0, 3)])
    low = list(deleted.values())[0].result(timeout=10)
    assert low.low_watermark == 3, low
    earliest = a.list_offsets({TopicPartition(t, 0): OffsetSpec.earliest()})
    assert list(earliest.values())[0].result(timeout=10).offset == 3
    a.create_partitions([NewPartitions(t, 4)])[t].result(timeout=10)
    wait_for("4 partitions", lambda: len(a.list_topics(t, timeout=10).topics[t].partitions) == 4)
    a.delete_topics([t], operation_timeout=10)[t].result()
    wait_for("topic gone", lambda: t not in a.list_topics(timeout=10).topics)


def produce_for_native():
    create("cf-to-native", 1)
    # Idempotent, so a retried first batch cannot land after later ones (without it,
    # librdkafka's retries may reorder; a just-created topic can refuse the first send).
    p = Producer({"bootstrap.servers": BOOT, "compression.type": "lz4",
                  "enable.idempotence": True})
    for i in range(5):
        p.produce("cf-to-native", key=b"key-%d" % i, value=b"value-%d" % i, partition=0)
    assert p.flush(30) == 0


def mixed_group():
    """The group "mixed" has a native member; a Kafka member is refused."""
    errors = []
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "mixed",
                  "error_cb": lambda e: errors.append(e)})
    c.subscribe(["cf-mixed"], on_assign=lambda *_: errors.append("assigned"))
    end = time.monotonic() + DEADLINE_S
    got = None
    while got is None and time.monotonic() < end:
        m = c.poll(0.2)
        if m is not None and m.error() is not None:
            got = m.error()
        elif errors:
            got = errors[0]
    c.close()
    assert got is not None, "no error"
    assert "assigned" not in errors, "a Kafka member joined a native group"
    assert "INCONSISTENT_GROUP_PROTOCOL" in str(got) or "nconsistent group protocol" in str(got), got


def static_member():
    """A static member (group.instance.id) that restarts keeps its partitions."""
    t = "cf-static-" + uuid.uuid4().hex[:8]
    create(t, 2)
    gid = "static-" + uuid.uuid4().hex[:6]

    def member(instance):
        c = Consumer({"bootstrap.servers": BOOT, "group.id": gid,
                      "group.instance.id": instance, "session.timeout.ms": 10000,
                      "auto.offset.reset": "earliest"})
        c.subscribe([t])
        return c

    def owned(c):
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            c.poll(0.1)
            parts = sorted(tp.partition for tp in c.assignment())
            if parts:
                return parts
        raise AssertionError("no assignment")

    a, b = member("a"), member("b")
    first_a, first_b = owned(a), owned(b)

    def settled():
        a.poll(0.05)
        b.poll(0.05)
        return sorted(tp.partition for c in (a, b) for tp in c.assignment()) == [0, 1]
    wait_for("both partitions owned", settled)
    first_a = sorted(tp.partition for tp in a.assignment())
    a.close()  # a static member leaves without LeaveGroup
    a = member("a")
    assert owned(a) == first_a, (owned(a), first_a)
    a.close()
    b.close()


def consumer_protocol():
    """KIP-848 (group.protocol=consumer): three members split a 6-partition topic, every
    record is processed, one member leaves and its partitions move to the other two with
    no record lost, committed offsets are readable, and the admin client describes the
    group as a consumer group."""
    from confluent_kafka import ConsumerGroupType
    t = "cf-kip848-" + uuid.uuid4().hex[:8]
    create(t, 6)
    produce(t, 600)
    gid = "g-kip848-" + uuid.uuid4().hex[:6]
    seen = set()
    lock = threading.Lock()
    stops = [threading.Event() for _ in range(3)]
    consumers = [None, None, None]
    owned = [[], [], []]
    errors = []

    def member(i):
        c = Consumer({"bootstrap.servers": BOOT, "group.id": gid,
                      "group.protocol": "consumer",
                      "auto.offset.reset": "earliest", "enable.auto.commit": True,
                      "auto.commit.interval.ms": 200, "client.id": f"kip848-{i}",
                      **({"debug": "cgrp"} if len(sys.argv) > 3 else {})})
        consumers[i] = c
        c.subscribe([t])
        while not stops[i].is_set():
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                with lock:
                    seen.add((m.partition(), m.offset()))
            elif m is not None and m.error() is not None and not m.error().retriable():
                errors.append(str(m.error()))
            mine = sorted(tp.partition for tp in c.assignment())
            with lock:
                owned[i] = mine
        # Leaves the group (heartbeat with epoch -1) after a final commit.
        c.close()
        with lock:
            owned[i] = []

    threads = [threading.Thread(target=member, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    try:
        wait_for("every record consumed by the group", lambda: len(seen) >= 600)

        def split(sizes):
            def check():
                with lock:
                    return sorted(len(o) for o in owned) == sizes and \
                        sorted(p for o in owned for p in o) == list(range(6))
            return check
        wait_for("2 partitions per member", split([2, 2, 2]))

        a = admin()
        listed = a.list_consumer_groups().result(timeout=10)
        assert gid in [g.group_id for g in listed.valid], listed.valid
        d = a.describe_consumer_groups([gid])[gid].result(timeout=10)
        assert d.type == ConsumerGroupType.CONSUMER, d.type
        assert len(d.members) == 3, d
        assigned = sorted(tp.partition for mem in d.members
                          for tp in mem.assignment.topic_partitions)
        assert assigned == list(range(6)), assigned
        assert all(mem.target_assignment is not None for mem in d.members), d

        # Member 2 leaves; its partitions move to the others, and records produced from
        # now on are all processed.
        stops[2].set()
        threads[2].join()
        wait_for("member 2's partitions taken over", split([0, 3, 3]))
        produce(t, 300)
        wait_for("every record consumed after the leave", lambda: len(seen) >= 900)
        d = a.describe_consumer_groups([gid])[gid].result(timeout=10)
        assert len(d.members) == 2, d

        # A classic member is refused while the group has consumer-protocol members
        # (GROUP_ID_NOT_FOUND, as Kafka answers), and takes no partition from them.
        classic_errors = []
        k = Consumer({"bootstrap.servers": BOOT, "group.id": gid,
                      "error_cb": lambda e: classic_errors.append(e)})
        k.subscribe([t], on_assign=lambda *_: classic_errors.append("assigned"))
        got = None
        end = time.monotonic() + DEADLINE_S
        while got is None and time.monotonic() < end:
            m = k.poll(0.2)
            if m is not None and m.error() is not None:
                got = m.error()
            elif classic_errors:
                got = classic_errors[0]
        k.close()
        assert "assigned" not in classic_errors, "a classic member joined a consumer group"
        assert got is not None and ("GROUP_ID_NOT_FOUND" in str(got)
                                    or "roup id not found" in str(got)), got
    finally:
        for s in stops:
            s.set()
        for th in threads:
            th.join()
    assert not errors, errors
    assert len(seen) == 900, len(seen)
    # Committed offsets are readable through a consumer of the group.
    c = Consumer({"bootstrap.servers": BOOT, "group.id": gid, "group.protocol": "consumer"})
    committed = c.committed([TopicPartition(t, p) for p in range(6)], timeout=10)
    c.close()
    assert sum(tp.offset for tp in committed) == 900, committed


def consumer_protocol_member(topic, gid):
    """Child process of consumer_protocol_crash: a member that prints its partitions."""
    c = Consumer({"bootstrap.servers": BOOT, "group.id": gid, "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "client.id": "kip848-child"})
    c.subscribe([topic])
    last = None
    while True:
        c.poll(0.1)
        mine = sorted(tp.partition for tp in c.assignment())
        if mine != last:
            print(",".join(map(str, mine)), flush=True)
            last = mine


def consumer_protocol_crash():
    """KIP-848 session timeout: a member killed with SIGKILL (no leave) is removed once
    its session expires (groups.consumer_session_timeout_ms, 6 s in this test), and its
    partitions move to the surviving member, which then reads every record."""
    import subprocess
    t = "cf-kip848-crash-" + uuid.uuid4().hex[:8]
    create(t, 4)
    gid = "g-kip848-crash-" + uuid.uuid4().hex[:6]
    child = subprocess.Popen([sys.executable, __file__, BOOT, "consumer_protocol_member",
                              t, gid], stdout=subprocess.PIPE, text=True)
    child_owned = []

    def read_child():
        for line in child.stdout:
            child_owned.append(line.strip())
    threading.Thread(target=read_child, daemon=True).start()
    c = Consumer({"bootstrap.servers": BOOT, "group.id": gid, "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "client.id": "kip848-survivor"})
    c.subscribe([t])
    seen = set()

    def mine():
        return sorted(tp.partition for tp in c.assignment())

    def polled(cond):
        def check():
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                seen.add((m.partition(), m.offset()))
            return cond()
        return check
    try:
        wait_for("two partitions each",
                 polled(lambda: len(mine()) == 2 and child_owned and
                        len(child_owned[-1].split(",")) == 2))
        child.kill()
        child.wait()
        killed_at = time.monotonic()
        produce(t, 200)
        wait_for("the killed member's partitions", polled(lambda: mine() == [0, 1, 2, 3]))
        # Not before the session timeout: the member was only removed by its expiry.
        assert time.monotonic() - killed_at > 3, time.monotonic() - killed_at
        wait_for("every record", polled(lambda: len(seen) >= 200))
    finally:
        if child.poll() is None:
            child.kill()
        c.close()
    assert len(seen) == 200, len(seen)


SCENARIOS = {
    "consumer_protocol": consumer_protocol,
    "consumer_protocol_crash": consumer_protocol_crash,
    "consumer_protocol_member": lambda: consumer_protocol_member(sys.argv[3], sys.argv[4]),
    "static_member": static_member,
    "produce_for_native": produce_for_native,
    "mixed_group": mixed_group,
    "idempotent": idempotent,
    "group_range": lambda: group("range"),
    "group_cooperative_sticky": lambda: group("cooperative-sticky"),
    "offsets": offsets,
    "admin": admin_ops,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[2]]()
    print("ok")
