"""The two Kafka clients behind :mod:`privaudit.bus`, against the real broker: where a newly
assigned partition is read from."""

from __future__ import annotations

import time

import pytest

from privaudit.bus import make_consumer, make_producer
from privaudit.settings import TOPIC_DLQ as TOPIC  # one partition, created by the fixture

pytestmark = pytest.mark.integration


def _assigned(consumer, seen: set) -> list:
    """Poll until the group has assigned the partition; what those polls returned."""
    got: list = []
    deadline = time.monotonic() + 30
    while not seen and time.monotonic() < deadline:
        got += consumer.poll(0.5, 100)
    assert seen, "never assigned"
    return got


def _next_offsets(consumer, n: int) -> list[int]:
    got: list[int] = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        got += [r.offset for r in consumer.poll(0.5, n - len(got))]
    return got


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_partition_is_read_from_where_begin_says(broker, client):
    producer = make_producer(client, broker.bootstrap)
    for i in range(50):
        producer.send(TOPIC, f"r{i}".encode(), key=b"k")
    producer.flush(30)
    producer.close()
    group = f"begin-{client}"
    seen: set = set()
    first = make_consumer(client, broker.bootstrap, group, [TOPIC], on_assign=seen.update, on_revoke=lambda s: None)
    _assigned(first, seen)
    first.commit({(TOPIC, 0): 10})  # an earlier owner's work
    first.close()
    seen.clear()

    consumer = make_consumer(client, broker.bootstrap, group, [TOPIC], on_assign=seen.update,
                             on_revoke=lambda s: None)
    polled = [r.offset for r in _assigned(consumer, seen)]
    if client == "kafka-python":
        consumer.seek((TOPIC, 0), 40)  # the client's own idea of where to read, as when its lookup raced a commit
        polled = []  # read from the client's own position, which begin() corrects
    assert consumer.begin((TOPIC, 0)) == 10
    assert (polled + _next_offsets(consumer, 5))[:5] == [10, 11, 12, 13, 14]
    consumer.close()


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_poll_returns_as_soon_as_records_are_there_not_when_it_has_max_records(broker, client):
    """The consumer gathers polls into a batch itself (``linger_s``): a poll that waited for
    ``max_records`` (librdkafka's ``consume(n, timeout)`` does) put its whole timeout on the latency
    of every record under a steady trickle."""
    seen: set = set()
    consumer = make_consumer(client, broker.bootstrap, f"poll-{client}", [TOPIC], on_assign=seen.update,
                             on_revoke=lambda s: None)
    _assigned(consumer, seen)
    producer = make_producer(client, broker.bootstrap)
    waits = []
    for i in range(5):
        producer.send(TOPIC, f"t{i}".encode(), key=b"k")
        producer.flush(30)
        started = time.monotonic()
        got = consumer.poll(3.0, 20_000)
        while not got and time.monotonic() - started < 10:  # the record may not be fetched yet
            got = consumer.poll(3.0, 20_000)
        waits.append(time.monotonic() - started)
        assert [r.value for r in got] == [f"t{i}".encode()]
    producer.close()
    consumer.close()
    assert sorted(waits)[2] < 1.0, waits  # the median, against the 3 s a poll may wait


def test_a_closed_confluent_producer_lets_its_connection_go(broker):
    """A closed producer whose librdkafka handle lived on stayed connected, and printed its lost
    connection on stderr when the broker stopped (the end of ``privaudit demo --kafka-client
    confluent`` did)."""
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from privaudit.bus import make_producer\n"
        f"p = make_producer('confluent', {broker.bootstrap!r})\n"
        f"p.send({TOPIC!r}, b'x', key=b'k')\n"
        "p.close(30)\n"
        "print('closed', flush=True)\n"
        "sys.stdin.readline()\n"  # the test stops the broker meanwhile
        "time.sleep(1.5)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "closed"
    broker.stop()
    _, err = proc.communicate("go\n", timeout=30)
    assert proc.returncode == 0 and "FAIL" not in err, err
