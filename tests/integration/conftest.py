"""Real components on free loopback ports: the Tansu broker, the embedded ClickHouse engine, and
the ``privaudit`` CLI as a subprocess (the embedded engine admits one process per directory, so the
test process opens a store only while no consumer process holds it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from privaudit.bus import LocalBroker, ensure_topics, free_port
from privaudit.checker import Checker
from privaudit.policy import load_policy
from privaudit.producers import AuditEmitter
from privaudit.producers.simulator import SimulationConfig, simulate
from privaudit.schemas import Event

PARTITIONS = 4


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    with LocalBroker(log=tmp_path / "broker.log") as local:
        ensure_topics(local.bootstrap, PARTITIONS)
        yield local


def produce(bootstrap: str, events: Sequence[Event], spool: Path) -> None:
    emitter = AuditEmitter(bootstrap, service="test", spool_dir=spool)
    for event in events:
        emitter.send_event(event)
    assert emitter.close(timeout_s=60), "events left in the spool"


def simulated(n: int, seed: int = 11, violation_rate: float = 0.05) -> list[Event]:
    return list(simulate(SimulationConfig(events=n, seed=seed, violation_rate=violation_rate), load_policy()))


def expected_verdicts(events: list[Event]) -> set[tuple[str, str]]:
    checker = Checker(load_policy())
    return {(e.event_id, v.rule) for e in events for v in checker.check(e)}


def consume_cmd(bootstrap: str, data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "privaudit.cli", "consume", "--bootstrap", bootstrap, "--data-dir", str(data_dir),
            "--partitions", str(PARTITIONS), *extra]


def consume(bootstrap: str, data_dir: Path, *extra: str, timeout: float = 180) -> dict:
    """Run ``privaudit consume --until-idle`` to completion; its JSON summary."""
    proc = subprocess.run(consume_cmd(bootstrap, data_dir, "--until-idle", "3", "--json", *extra),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sql(data_dir: Path, query: str) -> list[dict]:
    """Rows of ``privaudit sql --json``: a process of its own, as the embedded engine wants (one
    directory per process; a test process that opened one cannot reliably open another)."""
    proc = subprocess.run([sys.executable, "-m", "privaudit.cli", "sql", "--data-dir", str(data_dir), "--json", query],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


def stored_verdicts(data_dir: Path) -> list[tuple[str, str]]:
    rows = sql(data_dir, "SELECT toString(event_id) AS e, rule FROM privaudit.violations")
    return [(r["e"], r["rule"]) for r in rows]


def count(data_dir: Path, query: str) -> int:
    [row] = sql(data_dir, query)
    return int(next(iter(row.values())))


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> int:
    os.kill(proc.pid, sig)
    return proc.wait(30)


def wait_for(predicate, timeout: float = 30.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def read_topic(bootstrap: str, topic: str, n: int, timeout_s: float = 30) -> list:
    """Up to ``n`` records of partition 0 of ``topic``, from the start, in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0)])
    got: list = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        for records in consumer.poll(300).values():
            got += records
    consumer.close()
    return got


class Dashboard:
    """``privaudit dashboard`` on a free port; ``env`` added to the test's environment, less the
    dashboard token unless given there."""

    def __init__(self, data: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        inherited = {k: v for k, v in os.environ.items() if k != "PRIVAUDIT_DASHBOARD_TOKEN"}
        self.proc = subprocess.Popen([sys.executable, "-m", "privaudit.cli", "dashboard", "--data-dir", str(data),
                                      "--port", str(self.port), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**inherited, **(env or {})})
        self.url = f"http://127.0.0.1:{self.port}/"

    def wait(self) -> Dashboard:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read()  # type: ignore[union-attr]
            try:
                urllib.request.urlopen(self.url, timeout=1)
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the dashboard did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
