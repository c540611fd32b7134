"""A store that is unavailable is waited for: which errors say so, and how they are retried.

The stores here are stand-ins that fail on cue (a server cannot be made to fail on cue here); the
pipeline test ``test_a_store_unavailable_mid_run_is_waited_for...`` runs the same wrapper against
the real engine and broker."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from privaudit.errors import StoreError, StoreUnavailable
from privaudit.store import Retrying, Store


class _Client:
    """A clickhouse-connect client that raises what it is given, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)

    def command(self, sql, parameters=None):
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.mark.parametrize("error", [
    OperationalError("Error HTTPConnectionPool(host='ch', port=8123): Max retries exceeded"),
    DatabaseError("Code: 252. DB::Exception: Too many parts (300).", code=252),
    DatabaseError("Code: 241. DB::Exception: Memory limit (total) exceeded", code=241),
    DatabaseError("Code: 242. DB::Exception: Table is in readonly mode", code=242),
])
def test_an_unreachable_or_overloaded_server_is_unavailable(error):
    store = Store(_Client(error), "http://ch:8123")
    with pytest.raises(StoreUnavailable, match=str(error).split(".")[0][:20]):
        store.command("INSERT ...")
    assert store.command("INSERT ...") == "ok"


@pytest.mark.parametrize("error", [
    DatabaseError("Code: 62. DB::Exception: Syntax error", code=62),
    DatabaseError("Code: 60. DB::Exception: Unknown table privaudit.nope", code=60),
    DatabaseError("The ClickHouse server returned an error"),  # no code: not known to be transient
])
def test_a_statement_that_would_fail_again_is_a_plain_store_error(error):
    store = Store(_Client(error), "http://ch:8123")
    with pytest.raises(StoreError) as raised:
        store.command("SELECT nope")
    assert not isinstance(raised.value, StoreUnavailable)


class _Flaky:
    """A store whose calls fail as unavailable ``failures`` times, then succeed."""

    dsn, database, cluster = "http://ch:8123", "privaudit", None

    def __init__(self, failures: int, error: StoreError | None = None) -> None:
        self.failures, self.error = failures, error or StoreUnavailable("Code: 210. Connection refused")
        self.calls: list[tuple] = []

    def _call(self, *what: object) -> str:
        self.calls.append((time.monotonic(), *what))
        if self.failures:
            self.failures -= 1
            raise self.error
        return "ok"

    def command(self, sql, parameters=None):
        return self._call("command", sql)

    def query(self, sql, parameters=None, *, readonly=False):
        return self._call("query", sql, readonly)

    def insert_data(self, table, data, *, token=None):
        return self._call("insert", table, data, token)


def test_an_unavailable_store_is_retried_with_growing_waits_until_it_answers(caplog):
    flaky, counted = _Flaky(4), []
    store = Retrying(flaky, threading.Event(), first_delay_s=0.02, max_delay_s=0.05,  # type: ignore[arg-type]
                     on_retry=lambda: counted.append(1))
    with caplog.at_level("WARNING", logger="privaudit.backoff"):
        assert store.query("SELECT 1", readonly=True) == "ok"  # type: ignore[comparison-overlap]  # _Flaky's answer
    assert len(flaky.calls) == 5 and len(counted) == 4
    assert {c[1:] for c in flaky.calls} == {("query", "SELECT 1", True)}  # the same statement each time
    waits = [b[0] - a[0] for a, b in itertools.pairwise(flaky.calls)]
    assert waits[0] >= 0.02 and waits[1] >= 0.04 and waits[3] >= 0.05  # doubling, then capped
    ours = [r.message for r in caplog.records if r.name == "privaudit.backoff"]  # (other tests' threads log too)
    assert sum("next in" in m for m in ours) == 4
    assert "succeeded after 4 failed attempt(s)" in ours[-1]
    assert store.database == "privaudit" and store.dsn == "http://ch:8123"  # the rest is the store's


def test_an_insert_is_built_once_and_sent_again_as_it_was():
    flaky = _Flaky(2)
    store = Retrying(flaky, threading.Event(), first_delay_s=0.001)  # type: ignore[arg-type]
    store.insert("progress", [["t"], [1]], ["kafka_topic", "kafka_partition"], token="audit/t/1/0-4/progress")
    store.insert("progress", [[]], ["kafka_topic"])  # nothing to insert: nothing sent
    assert len(flaky.calls) == 3
    first = flaky.calls[0][3]
    assert all(c[1:3] == ("insert", "progress") and c[3] is first and c[4] == "audit/t/1/0-4/progress"
               for c in flaky.calls)


def test_a_statement_that_would_fail_again_is_not_retried():
    flaky = _Flaky(1, StoreError("Code: 62. Syntax error"))
    with pytest.raises(StoreError, match="Syntax error"):
        Retrying(flaky, threading.Event(), first_delay_s=0.001).command("SELEC 1")  # type: ignore[arg-type]
    assert len(flaky.calls) == 1


def test_stopping_ends_the_wait_with_the_error():
    flaky, stop = _Flaky(10**6), threading.Event()
    store = Retrying(flaky, stop, first_delay_s=30)  # type: ignore[arg-type]
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="stopped while waiting"):
        store.command("INSERT ...")
    assert time.monotonic() - started < 5 and len(flaky.calls) == 1
    with pytest.raises(StoreUnavailable, match="stopping"):  # once stopped, the first failure is raised
        store.command("INSERT ...")
    assert len(flaky.calls) == 2
