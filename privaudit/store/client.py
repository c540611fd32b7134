"""The store: one clickhouse-connect client for the embedded engine (``chdb://DIR``) or a server.

    store = Store.connect("chdb:///abs/data/clickhouse")        # or "http://host:8123"
    store.migrate(retention_days=730)                            # or None: keep the store's setting
    store.insert("events", rows, columns, token="privaudit.events/3/100-199")

Errors are translated where they enter: a ClickHouse error becomes :class:`StoreError`, or
:class:`StoreUnavailable` when the same statement may succeed later (the server cannot be reached,
or refuses work for now: :data:`TRANSIENT_CODES`); the embedded engine's lock on its directory (one
process at a time) becomes :class:`StoreBusy` with one line saying what to do.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from privaudit.errors import StoreBusy, StoreError, StoreUnavailable
from privaudit.settings import MIN_RETENTION_DAYS, shown_url

from . import ddl, migrations
from .arrow import to_arrow

#: What an insert sends: an Arrow table, or (columns, names) for a table Arrow cannot describe.
InsertData: TypeAlias = pa.Table | tuple[list[Sequence[Any]], list[str]]
Rows = list[tuple[Any, ...]]


class Statements(Protocol):
    """What the pipeline's stages need of a store: a :class:`Store`, the same store in another
    process (:class:`~.remote.RemoteStore`), or either with its statements retried
    (:class:`~.retry.Retrying`)."""

    dsn: str
    database: str
    cluster: str | None

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any: ...

    def query(self, sql: str, parameters: dict[str, Any] | None = None, *,
              readonly: bool = False) -> tuple[list[str], Rows]: ...

    def insert(self, table: str, columns_data: Sequence[Sequence[Any]], column_names: Sequence[str], *,
               token: str | None = None) -> None: ...

    def insert_data(self, table: str, data: InsertData, *, token: str | None = None) -> None: ...


class BuildsInserts:
    """The column-oriented ``insert`` of every store: the data is built where the call is made (in a
    consumer process, or once before retries), then sent by the class's own ``insert_data``."""

    def insert_data(self, table: str, data: InsertData, *, token: str | None = None) -> None:
        raise NotImplementedError

    def insert(self, table: str, columns_data: Sequence[Sequence[Any]], column_names: Sequence[str], *,
               token: str | None = None) -> None:
        """Column-oriented insert; ``token`` deduplicates a repeated insert of the same batch."""
        if not columns_data or not len(columns_data[0]):
            return
        self.insert_data(table, insert_data(table, columns_data, column_names), token=token)


class Store(BuildsInserts):
    """A ClickHouse database reached through one clickhouse-connect client (thread-safe here)."""

    def __init__(self, client: Any, dsn: str, database: str = "privaudit", cluster: str | None = None) -> None:
        self.client = client
        self.dsn = dsn
        self.database = database
        self.cluster = cluster
        self._lock = threading.Lock()
        self._readonly: Any = None

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb://")

    @classmethod
    def connect(cls, dsn: str, *, database: str = "privaudit", cluster: str | None = None) -> Store:
        engine_said: list[str] = []
        try:
            if dsn.startswith("chdb://"):
                with _quiet_stderr(engine_said):  # the engine prints its errors on fd 2; we say it in one line
                    client = clickhouse_connect.get_client(dsn=dsn)
            else:
                client = clickhouse_connect.get_client(dsn=dsn)
        except Exception as exc:  # chdb and HTTP raise different families; translate them all here
            text = " ".join([str(exc), *engine_said])
            if "Cannot lock file" in text or "already running" in text:
                directory = dsn.removeprefix("chdb://")
                raise StoreBusy(
                    f"the embedded store {directory} is in use by another process (one process per data "
                    f"directory): stop it, or query through it (privaudit run serves the dashboard and SQL)"
                ) from exc
            error = StoreUnavailable if isinstance(exc, OperationalError) else StoreError  # a server not (yet) up
            raise error(f"cannot open ClickHouse at {shown_dsn(dsn)}: {text.splitlines()[0] if text else exc}") from exc
        return cls(client, dsn, database, cluster)

    # -- statements -----------------------------------------------------------------------

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        try:
            with self._lock:
                return self.client.command(sql, parameters=parameters)
        except ClickHouseError as exc:
            raise _store_error(exc) from exc

    def query(self, sql: str, parameters: dict[str, Any] | None = None, *,
              readonly: bool = False) -> tuple[list[str], Rows]:
        """``(column names, rows)``; ``readonly`` refuses anything but reading (ClickHouse's own check)."""
        try:
            with self._lock:
                if readonly and self.embedded:
                    result = self._readonly_client().query(sql, parameters=parameters)
                else:
                    settings = {"readonly": 1} if readonly else None
                    result = self.client.query(sql, parameters=parameters, settings=settings)
        except ClickHouseError as exc:
            raise _store_error(exc) from exc
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def _readonly_client(self) -> Any:
        """A second session on the embedded directory, read-only for good. The embedded engine
        applies a per-call ``readonly`` with ``SET`` and restores it after the call, and a statement
        refused in read-only mode left the shared session read-only, since nothing may change a
        setting there (measured: the consumer's next insert failed). Called with the lock held."""
        if self._readonly is None:
            client = clickhouse_connect.get_client(dsn=self.dsn)
            client.command(f"SET max_execution_time = {READ_ONLY_SECONDS}")  # a person's query, not the pipeline's
            client.command("SET readonly = 1")
            self._readonly = client
        return self._readonly

    def insert_data(self, table: str, data: InsertData, *, token: str | None = None) -> None:
        """Insert what :func:`insert_data` built (possibly in another process: see :mod:`.remote`)."""
        settings: dict[str, Any] = {}
        if token is not None:
            settings = {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": 1}
        try:
            with self._lock:
                if isinstance(data, pa.Table):
                    self.client.insert_arrow(f"{self.database}.{table}", data, settings=settings)
                else:
                    columns_data, column_names = data
                    self.client.insert(
                        f"{self.database}.{table}",
                        list(columns_data),
                        column_names=list(column_names),
                        column_oriented=True,
                        settings=settings,
                    )
        except ClickHouseError as exc:
            raise _store_error(exc, f"insert into {table}: ") from exc

    # -- schema ---------------------------------------------------------------------------

    def target(self, retention_days: int) -> ddl.Target:
        return ddl.Target(self.database, retention_days, self.cluster)

    def migrate(self, retention_days: int | None = None) -> list[int]:
        """Apply the missing migrations; the versions applied now (empty when up to date).

        ``retention_days`` sets the TTL of events and violations, also of existing tables. None
        keeps the store's setting (the minimum, 730, for a new store): what a command that does not
        own the setting passes (the dashboard, the report, the alert dispatcher), so that starting
        one never shortens what the compliance team configured."""
        given = self.target(retention_days) if retention_days is not None else None  # a short one refused here
        for statement in migrations.bookkeeping(given or self.target(MIN_RETENTION_DAYS)):
            self.command(statement)
        recorded = self.retention_days()  # in force before this call (None: a new store)
        target = given or self.target(recorded or MIN_RETENTION_DAYS)
        _, rows = self.query(f"SELECT version FROM {self.database}.schema_migrations")
        done = {r[0] for r in rows}
        applied = []
        for migration in migrations.MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements(target):
                self.command(statement)
            self.insert(
                "schema_migrations",
                [[migration.version], [migration.name], [target.retention_days]],
                ["version", "name", "retention_days"],
            )
            applied.append(migration.version)
        # Compared with the setting before the migrations: those just applied record the new one,
        # but the tables made earlier still have the old TTL.
        if given is not None and recorded is not None and recorded != given.retention_days:
            self._apply_retention(given)
        return applied

    def retention_days(self) -> int | None:
        """The TTL in force: the retention of the latest migration or change (None: no schema yet)."""
        _, rows = self.query(
            f"SELECT retention_days FROM {self.database}.schema_migrations ORDER BY applied_at DESC LIMIT 1"
        )
        return int(rows[0][0]) if rows else None

    def _apply_retention(self, target: ddl.Target) -> None:
        """A changed retention setting: applied to the TTL of the existing tables, and recorded."""
        for table in ddl.ALL_TABLES:
            if table.ttl:
                self.command(ddl.modify_ttl(target, table))
        self.insert("schema_migrations", [[0], ["retention changed"], [target.retention_days]],
                    ["version", "name", "retention_days"])

    def close(self) -> None:
        for client in (self._readonly, self.client):
            try:
                if client is not None:
                    client.close()
            except Exception:  # closing is best effort; nothing to report to the user
                pass


@contextlib.contextmanager
def _quiet_stderr(said: list[str]) -> Iterator[None]:
    """Send file descriptor 2 to a scratch file for the duration (C++ code writes there directly);
    what was written is appended to ``said``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            scratch.seek(0)
            said.append(scratch.read().decode("utf-8", "replace"))


def insert_data(table: str, columns_data: Sequence[Sequence[Any]], column_names: Sequence[str]) -> InsertData:
    """The columns of one insert as the store sends them; :class:`StoreError` if a value does not
    fit its column."""
    try:
        data = to_arrow(table, columns_data, column_names)
    except (pa.ArrowException, OverflowError, TypeError) as exc:
        raise StoreError(f"insert into {table}: a value does not fit its column: {exc}") from exc
    return data if data is not None else (list(columns_data), list(column_names))


def as_utc(value: datetime) -> datetime:
    """A DateTime64(3, 'UTC') value as read back, made aware (the client may return it naive)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


#: How long a read of the read-only session may run (a person's query from the dashboard or `sql`).
READ_ONLY_SECONDS = 120

#: ClickHouse error codes that mean "not now" rather than "never": the statement may succeed when
#: sent again later (``SELECT errorCodeToName(code)`` names them).
TRANSIENT_CODES = frozenset({
    159,  # TIMEOUT_EXCEEDED
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    225,  # NO_ZOOKEEPER
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY (a replica that lost its keeper session)
    252,  # TOO_MANY_PARTS (inserts faster than merges)
    279,  # ALL_CONNECTION_TRIES_FAILED
    319,  # UNKNOWN_STATUS_OF_INSERT
    473,  # DEADLOCK_AVOIDED
    999,  # KEEPER_EXCEPTION
})


def _store_error(exc: ClickHouseError, prefix: str = "") -> StoreError:
    """:class:`StoreUnavailable` for a transport failure (clickhouse-connect's ``OperationalError``:
    no connection, a broken response, HTTP 429/503/504 after its own retries) or a transient code;
    :class:`StoreError` for anything else (a statement that would fail again)."""
    text = prefix + _first_line(exc)
    if isinstance(exc, OperationalError) or getattr(exc, "code", None) in TRANSIENT_CODES:
        return StoreUnavailable(text)
    return StoreError(text)


def shown_dsn(dsn: str) -> str:
    """The DSN to print or log: a password in it (``http://user:secret@host``) is masked."""
    return shown_url(dsn)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
