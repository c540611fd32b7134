"""The store across processes: one process owns the store, others reach it through a socket.

The embedded engine admits one process per data directory, and one Python process checks about
one core's worth of events. To check on several cores, ``privaudit run --processes N`` keeps the
store in the hosting process and runs the consumers in N processes of their own, which call it
through :class:`RemoteStore`, a :class:`~privaudit.store.Store` with the same methods::

    server = StoreServer(store)                 # the process that owns the store
    remote = RemoteStore(server.spec)           # in a consumer process (``spec`` is picklable)
    remote.insert("events", columns, names, token=...)

Inserts travel as the Arrow tables the store would insert anyway (built in the calling process, so
that work is spread too); queries and commands travel as their text and parameters. A store error
comes back as :class:`StoreError` with the store's own message (:class:`StoreUnavailable` as itself,
so the caller retries). A connection that breaks (the
owning process died) is a :class:`StoreError` too, never a silent loss: the caller has not
committed what it could not load.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from privaudit.errors import StoreError, StoreUnavailable

from .client import BuildsInserts, InsertData, Rows, Statements


@dataclass(frozen=True)
class RemoteSpec:
    """What a consumer process needs to reach the store (picklable)."""

    address: str
    authkey: bytes
    dsn: str
    database: str
    cluster: str | None


class StoreServer:
    """Serves one :class:`Store` to other processes on a Unix socket, one thread per connection.
    The socket is in a private temporary directory and each connection proves the key."""

    def __init__(self, store: Statements) -> None:
        self.store = store
        self._dir = tempfile.mkdtemp(prefix="privaudit-store-")
        self._authkey = os.urandom(32)
        self._listener = Listener(os.path.join(self._dir, "store.sock"), family="AF_UNIX", authkey=self._authkey)
        self._address = str(self._listener.address)
        self._closed = threading.Event()
        self._conns: set[Connection] = set()
        self._thread = threading.Thread(target=self._accept, name="privaudit-store-server", daemon=True)
        self._thread.start()

    @property
    def spec(self) -> RemoteSpec:
        s = self.store
        return RemoteSpec(self._address, self._authkey, s.dsn, s.database, s.cluster)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn = self._listener.accept()
            except OSError:  # closed, or a peer that failed the handshake
                if self._closed.is_set():
                    return
                continue
            self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="privaudit-store-conn", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:
            while True:
                try:
                    op, args = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    reply: tuple[str, Any] = ("ok", self._do(op, args))
                except StoreUnavailable as exc:
                    reply = ("unavailable", str(exc))
                except StoreError as exc:
                    reply = ("error", str(exc))
                except Exception as exc:  # anything else is reported to the caller, never swallowed here
                    reply = ("error", f"{type(exc).__name__}: {exc}")
                conn.send(reply)
        except (OSError, ValueError):  # the caller went away mid-reply
            return
        finally:
            self._conns.discard(conn)
            conn.close()

    def _do(self, op: str, args: tuple[Any, ...]) -> Any:
        store = self.store
        if op == "insert":
            table, data, token = args
            return store.insert_data(table, data, token=token)
        if op == "query":
            sql, parameters, readonly = args
            return store.query(sql, parameters, readonly=readonly)
        if op == "command":
            sql, parameters = args
            return store.command(sql, parameters)
        raise StoreError(f"unknown store operation {op!r}")

    def close(self) -> None:
        """Stop serving: the listener and every open connection (their callers get a
        :class:`StoreError` on their next call)."""
        self._closed.set()
        self._listener.close()
        for conn in list(self._conns):
            try:  # shutdown, not close: it wakes the thread blocked reading, and the peer sees the end
                sock = socket.socket(fileno=conn.fileno())
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.detach()
            except OSError:
                pass
        shutil.rmtree(self._dir, ignore_errors=True)


class RemoteStore(BuildsInserts):
    """A :class:`Store` in another process, reached through a :class:`StoreServer` (thread-safe:
    one request at a time on one connection, as the store itself serialises its statements)."""

    def __init__(self, spec: RemoteSpec) -> None:
        self.dsn, self.database, self.cluster = spec.dsn, spec.database, spec.cluster
        try:
            self._conn = Client(spec.address, family="AF_UNIX", authkey=spec.authkey)
        except OSError as exc:
            raise StoreError(f"cannot reach the store's host process at {spec.address}: {exc}") from exc
        self._lock = threading.Lock()

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb://")

    def _call(self, op: str, *args: Any) -> Any:
        try:
            with self._lock:
                self._conn.send((op, args))
                reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise StoreError(f"lost the store's host process ({type(exc).__name__}: {exc})") from exc
        if reply[0] == "unavailable":
            raise StoreUnavailable(reply[1])
        if reply[0] == "error":
            raise StoreError(reply[1])
        return reply[1]

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self._call("command", sql, parameters)

    def query(self, sql: str, parameters: dict[str, Any] | None = None, *,
              readonly: bool = False) -> tuple[list[str], Rows]:
        columns, rows = self._call("query", sql, parameters, readonly)
        return columns, rows

    def insert_data(self, table: str, data: InsertData, *, token: str | None = None) -> None:
        self._call("insert", table, data, token)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()
