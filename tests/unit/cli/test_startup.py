"""At start-up a ClickHouse server that cannot be reached yet is tried again for ``--startup-wait``;
a statement that would fail again is not; a password in the DSN is never printed.

The stores here are stand-ins (no server can be made to come up late here); the broker's side runs
against the real local broker in ``test_a_consumer_started_before_the_broker_waits_for_it...``."""

from __future__ import annotations

import threading
import time

import pytest

from privaudit.bus import free_port
from privaudit.cli.startup import open_dependencies
from privaudit.errors import RegistryUnavailable, StoreError, StoreUnavailable
from privaudit.store import Store, shown_dsn


@pytest.mark.parametrize(("dsn", "shown"), [
    ("chdb:///srv/privaudit/clickhouse", "chdb:///srv/privaudit/clickhouse"),
    ("http://ch:8123", "http://ch:8123"),
    ("http://audit@ch:8123", "http://audit@ch:8123"),
    ("https://audit:s%40cret@ch:8443/privaudit?secure=true", "https://audit:***@ch:8443/privaudit?secure=true"),
])
def test_a_password_in_the_dsn_is_masked_where_it_is_shown(dsn, shown):
    assert shown_dsn(dsn) == shown


def test_a_server_that_refuses_connections_is_unavailable_and_its_password_is_not_printed():
    with pytest.raises(StoreUnavailable, match=r"cannot open ClickHouse at http://audit:\*\*\*@127\.0\.0\.1") as raised:
        Store.connect(f"http://audit:hunter2@127.0.0.1:{free_port()}")
    assert "hunter2" not in str(raised.value)


class _Server:
    """``Store.connect`` for a server that answers after ``down`` attempts (``fail_migrate``: the
    first migration after that is cut off too)."""

    def __init__(self, down: int, *, error: StoreError | None = None, fail_migrate: bool = False) -> None:
        self.down, self.error, self.fail_migrate = down, error or StoreUnavailable("Connection refused"), fail_migrate
        self.connects: list[float] = []
        self.stores: list[_Opened] = []

    def connect(self, dsn: str) -> _Opened:
        self.connects.append(time.monotonic())
        if self.down:
            self.down -= 1
            raise self.error
        store = _Opened(self)
        self.stores.append(store)
        return store


class _Opened:
    def __init__(self, server: _Server) -> None:
        self.server, self.closed = server, False
        self.migrated: list[int | None] = []

    def migrate(self, retention_days: int | None = None) -> list[int]:
        if self.server.fail_migrate:
            self.server.fail_migrate = False
            raise StoreUnavailable("Code: 210. Connection reset by peer")
        self.migrated.append(retention_days)
        return []

    def close(self) -> None:
        self.closed = True


def _open(server: _Server, monkeypatch: pytest.MonkeyPatch, wait_s: float,
          schema_registry: str | None = None) -> object:
    monkeypatch.setattr(Store, "connect", server.connect)
    return open_dependencies("http://ch:8123", None, stop=threading.Event(), wait_s=wait_s, retention_days=1095,
                             schema_registry=schema_registry)


def test_a_server_not_up_yet_is_tried_again_until_it_answers_then_migrated(monkeypatch, caplog):
    server = _Server(down=2)
    with caplog.at_level("WARNING", logger="privaudit.backoff"):
        store = _open(server, monkeypatch, wait_s=30)
    assert len(server.connects) == 3 and store is server.stores[-1]
    assert store.migrated == [1095] and not store.closed
    ours = [r.message for r in caplog.records if r.name == "privaudit.backoff"]  # (other tests' threads log too)
    assert [m.split(" failed")[0] for m in ours[:2]] == ["opening ClickHouse at http://ch:8123"] * 2


def test_a_migration_cut_off_closes_that_client_and_starts_again(monkeypatch):
    server = _Server(down=0, fail_migrate=True)
    store = _open(server, monkeypatch, wait_s=30)
    first, second = server.stores
    assert first.closed and store is second and second.migrated == [1095]


def test_a_server_that_never_comes_fails_after_the_wait_with_the_last_error(monkeypatch):
    server = _Server(down=10**6)
    started = time.monotonic()
    giving_up = r"Connection refused \(still failing after \d attempt\(s\) over \d s; giving up\)"
    with pytest.raises(StoreUnavailable, match=giving_up):
        _open(server, monkeypatch, wait_s=2)
    assert time.monotonic() - started < 2.5 and 2 <= len(server.connects) <= 3


def test_an_error_that_would_come_again_is_not_waited_for(monkeypatch):
    server = _Server(down=1, error=StoreError("Code: 516. Authentication failed"))
    with pytest.raises(StoreError, match="Authentication failed"):
        _open(server, monkeypatch, wait_s=30)
    assert len(server.connects) == 1


def test_no_wait_fails_at_the_first_error(monkeypatch):
    server = _Server(down=1)
    with pytest.raises(StoreUnavailable, match="giving up"):
        _open(server, monkeypatch, wait_s=0)
    assert len(server.connects) == 1


def test_a_schema_registry_is_reached_at_start_up_and_waited_for_like_the_store(monkeypatch):
    """``--schema-registry``: reached before the store is opened, with the same bounded wait; one
    that is up does not hold the start-up back."""
    from tests.registry import StandInRegistry

    server = _Server(down=0)
    with StandInRegistry() as registry:
        registry.down = True
        threading.Timer(1.0, lambda: setattr(registry, "down", False)).start()
        store = _open(server, monkeypatch, wait_s=30, schema_registry=registry.url)
        assert registry.requests.count(("GET", "/config")) >= 2 and store is server.stores[-1]
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match=r"cannot reach the schema registry .* giving up\)"):
        _open(_Server(down=0), monkeypatch, wait_s=1, schema_registry=f"http://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 2
