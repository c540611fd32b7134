"""A failing machine: a broker that comes back empty, a broker killed under a reader."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from privaudit.bus import LocalBroker, ensure_topics, free_port

from .conftest import PARTITIONS, consume, consume_cmd, count, produce, simulated, sql, wait_for

pytestmark = pytest.mark.integration


def _restarted_empty(broker: LocalBroker, tmp_path) -> LocalBroker:
    """The broker stopped and started again on its port: its storage is in memory, so it comes
    back with no topics, no records and no group offsets."""
    broker.stop()
    again = LocalBroker(port=broker.port, log=tmp_path / "broker-2.log").start()
    ensure_topics(again.bootstrap, PARTITIONS)
    return again


def _stored(data_dir) -> tuple[int, int]:
    """(rows, distinct event ids) in ``events``."""
    [row] = sql(data_dir, "SELECT count() AS n, uniqExact(event_id) AS d FROM privaudit.events")
    return int(row["n"]), int(row["d"])


@pytest.mark.parametrize(("second", "client"), [(150, "kafka-python"), (700, "kafka-python"), (700, "confluent")],
                         ids=["shorter-log", "longer-log", "longer-log-confluent"])
def test_a_broker_back_empty_between_two_runs_loses_nothing_of_either(broker, tmp_path, second, client):
    """The second life's offsets overlap the first's (shorter log) or run past where the first
    ended (longer log, where no offset is out of range): both are loaded, each once."""
    data = tmp_path / "data"
    produce(broker.bootstrap, simulated(400, seed=1), tmp_path / "spool-1")
    assert consume(broker.bootstrap, data, "--kafka-client", client)["loaded_events"] == 400
    again = _restarted_empty(broker, tmp_path)
    try:
        produce(again.bootstrap, simulated(second, seed=2), tmp_path / "spool-2")
        command = consume_cmd(again.bootstrap, data, "--until-idle", "3", "--json", "--kafka-client", client)
        proc = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "read as life 1 of the topic" in proc.stderr
        assert _stored(data) == (400 + second, 400 + second)
        lives = sql(data, "SELECT incarnation, topic_id != '' AS has_id, reason "
                          "FROM privaudit.incarnations FINAL ORDER BY incarnation")
        assert [(r["incarnation"], r["has_id"]) for r in lives] == [(0, 1), (1, 1)]
        assert "re-created or its broker came back empty" in lives[1]["reason"]
        assert count(data, "SELECT count() FROM privaudit.events WHERE kafka_incarnation = 1") == second
        # a third run finds nothing new: the group's offsets are the new life's
        assert consume(again.bootstrap, data, "--kafka-client", client)["loaded_events"] == 0
        assert _stored(data) == (400 + second, 400 + second)
    finally:
        again.stop()


def test_a_broker_back_empty_under_a_running_consumer_loses_nothing(broker, tmp_path):
    data, metrics = tmp_path / "data", free_port()
    command = consume_cmd(broker.bootstrap, data, "--until-idle", "20", "--json", "--metrics-port", str(metrics))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    again = None
    try:
        produce(broker.bootstrap, simulated(300, seed=3), tmp_path / "spool-1")
        # read and loaded (the consumer is idle, not yet for 20 s): what the broker loses next is not ours
        assert wait_for(lambda: _records_read(metrics) == 300, timeout=120), "the consumer did not read the events"
        again = _restarted_empty(broker, tmp_path)
        produce(again.bootstrap, simulated(200, seed=4), tmp_path / "spool-2")
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired as exc:
            (tmp_path / "stuck.err").write_bytes(exc.stderr or b"")
            raise
        assert proc.returncode == 0, err[-3000:]
        assert "life 1" in err, err

    finally:
        if proc.poll() is None:
            proc.kill()
        if again is not None:
            again.stop()
    assert _stored(data) == (500, 500)


def _records_read(port: int) -> float:
    """``privaudit_records_total`` of a consumer serving metrics on ``port`` (-1 before it answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return -1
    found = re.search(r"^privaudit_records_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1


def _only_privaudit_lines(stderr: str) -> list[str]:
    """Every line privaudit's own (its loggers, or its one-line errors): no library's log lines,
    no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    foreign = [line for line in lines
               if not re.match(r"^\d{4}-\d\d-\d\d [\d:,]+ (WARNING|ERROR|INFO) \S+ privaudit[.\w]*: ", line)
               and not line.startswith("privaudit: ")]
    assert not foreign, "\n".join(foreign[:20])
    return lines


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_broker_killed_under_consume_is_waited_for_quietly_and_sigterm_exits_0(tmp_path, client):
    port = free_port()
    broker = LocalBroker(port=port, log=tmp_path / "broker.log").start()
    ensure_topics(broker.bootstrap, PARTITIONS)
    data, metrics = tmp_path / "data", free_port()
    command = consume_cmd(broker.bootstrap, data, "--kafka-client", client, "--metrics-port", str(metrics))
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        produce(broker.bootstrap, simulated(200, seed=5), tmp_path / "spool")
        assert wait_for(lambda: _records_read(metrics) == 200, timeout=120), "the consumer did not read the events"
        assert broker.process is not None
        broker.process.kill()  # SIGKILL: no goodbye to the clients
        broker.process.wait()
        time.sleep(20)
        assert proc.poll() is None, "the consumer exited while the broker was away"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        broker.stop()
    assert proc.returncode == 0, err[-3000:]
    lines = _only_privaudit_lines(err)
    # one line per wait period (reading, or publishing what was found before the kill), the periods
    # doubling: a handful in 20 s, not one per reconnection attempt
    waits = [line for line in lines if " WARNING " in line and "privaudit.backoff" in line and "; attempt " in line]
    assert 1 <= len(waits) <= 8, "\n".join(lines)
    assert "stopped while waiting" in lines[-1]
    assert count(data, "SELECT count() FROM privaudit.events") == 200


@pytest.mark.parametrize("command", ["simulate", "run"])
def test_without_a_broker_simulate_and_run_say_so_in_their_own_words(tmp_path, command):
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    args = {"simulate": ["--events", "30", "--spool-dir", str(tmp_path / "spool"), "--flush-timeout", "3"],
            "run": ["--data-dir", str(tmp_path / "data"), "--startup-wait", "3"]}[command]
    proc = subprocess.run([sys.executable, "-m", "privaudit.cli", command, "--bootstrap", bootstrap, *args],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("privaudit: error: ") and bootstrap in lines[-1]
    assert not [line for line in lines if "kafka" in line.lower() and "privaudit" not in line], "\n".join(lines)
    assert "Traceback" not in proc.stderr
