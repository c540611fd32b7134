"""Consumers in processes of their own, served the store by the process that owns it.

One Python process checks on one core at a time, however many consumer threads it runs, and the
embedded store admits one process. ``privaudit run --processes N`` therefore keeps the store, the
bulk stage, the alert dispatcher and the dashboard in the hosting process (:class:`ProcessHost`)
and runs N consumers in spawned processes (:func:`consumer_process`). They are ordinary members of
the consumer group, with the same loop, journal and tokens as threads; only their store calls
travel, to the host (:mod:`privaudit.store.remote`).

Each process talks to the host on a pipe of its own: "ready" and reports (totals, metrics, an
error) up, "go" and "stop" down. Never a queue or lock shared between processes: a process killed
in the middle of a write would leave such a lock held and the others stuck (as a shared
``multiprocessing.Queue`` did when one consumer process was killed).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from privaudit.errors import ConsumerProcessFailed
from privaudit.policy import Policy
from privaudit.settings import configure_logging
from privaudit.signals import install_stop_signals
from privaudit.store import RemoteSpec, RemoteStore, Retrying, Statements, StoreServer

from .bulk import BulkStage
from .config import ConsumerConfig
from .metrics import Metrics, RelayMetrics
from .runner import AuditConsumer, Totals

#: How long stopped consumer processes get to finish their batch before they are killed (what they
#: had not committed is read again, exactly once, by the next run).
STOP_GRACE_S = 60.0


@dataclass
class _Member:
    process: Any  # multiprocessing's SpawnProcess
    totals: Totals
    ready: bool = False


class ProcessHost:
    """The host's side: start the processes, serve them the store, relay their reports, run the
    bulk stage (its tail once every partition's owner says it is caught up), and stop them all on
    :meth:`stop`, when idle for ``idle_exit_s``, or when one fails."""

    def __init__(self, config: ConsumerConfig, store: Statements, policy: Policy, bulk: BulkStage | None, *,
                 processes: int, partitions: int, idle_exit_s: float | None, metrics: Metrics) -> None:
        self.config, self.bulk, self.metrics, self.idle_exit_s = config, bulk, metrics, idle_exit_s
        self._watch = bulk or BulkStage(store, policy, None, partitions=partitions, topic=config.topic)
        self._server = StoreServer(_unwrapped(store))
        ctx = mp.get_context("spawn")  # never fork a process holding the engine and client threads
        self._members: dict[Connection, _Member] = {}
        self._their_ends: list[Connection] = []
        for i in range(processes):
            name = f"consumer-{i + 1}"
            here, there = ctx.Pipe()
            level = logging.getLogger("privaudit").getEffectiveLevel()
            process = ctx.Process(target=consumer_process, name=name,
                                  args=(self._server.spec, replace(config, name=name), policy, there, level))
            self._members[here] = _Member(process, Totals())
            self._their_ends.append(there)
        self._open = set(self._members)
        self.failed: list[str] = []
        self._stop_by = float("inf")
        self._next_bulk = self._next_tail = 0.0

    @property
    def totals(self) -> list[Totals]:
        return [m.totals for m in self._members.values()]

    @property
    def stopping(self) -> bool:
        return self._stop_by != float("inf")

    def run(self, stop: threading.Event, tick: Callable[[list[Totals]], None]) -> list[Totals]:
        """Until every process has exited; ``tick`` sees the totals after each report or half second."""
        try:
            for member, there in zip(self._members.values(), self._their_ends, strict=True):
                member.process.start()
                there.close()  # the child's end: once the child exits, reading ours ends
            while self._open and time.monotonic() < self._stop_by:
                self._receive()
                self._note_exits()
                if stop.is_set() or self.failed:
                    self.stop()
                if not self.stopping and all(m.ready for m in self._members.values()):
                    self._bulk_and_idle()
                tick(self.totals)
        finally:
            self._finish()
        if self.failed:
            raise ConsumerProcessFailed("; ".join(self.failed))
        return self.totals

    def stop(self) -> None:
        if not self.stopping:
            self._stop_by = time.monotonic() + STOP_GRACE_S
            self._tell("stop")

    def _tell(self, message: str) -> None:
        for pipe in self._open:
            with contextlib.suppress(OSError):  # that process is gone; its end of the pipe says so when read
                pipe.send((message,))

    def _receive(self) -> None:
        ready = wait(list(self._open), timeout=0.5)
        for pipe in [p for p in self._open if p in ready]:
            member = self._members[pipe]
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                self._open.discard(pipe)
                continue
            if message[0] == "ready":
                member.ready = True
                if all(m.ready for m in self._members.values()):
                    self._tell("go")
                continue
            _, member.totals, ops, error = message
            RelayMetrics.replay(self.metrics, ops)
            if error:
                self.failed.append(f"{member.process.name}: {error}")

    def _note_exits(self) -> None:
        for member in self._members.values():
            code, name = member.process.exitcode, member.process.name
            if code not in (None, 0) and not any(f.startswith(f"{name}:") for f in self.failed):
                self.failed.append(f"{name}: exited with {_exit_status(code)}")

    def _bulk_and_idle(self) -> None:
        config, now = self.config, time.monotonic()
        if now < self._next_tail:
            return
        self._next_tail = now + config.bulk_every_s
        fresh_s = 3 * config.attest_every_s
        # every partition loaded to its end and quiet for bulk_idle_s, said by its owner
        tail = self._watch.all_caught_up(config.bulk_idle_s, fresh_s)
        if self.bulk is not None and (tail or now >= self._next_bulk):
            self.bulk.run_once(final=tail)
            self._next_bulk = now + config.bulk_every_s
        idle_exit_s = self.idle_exit_s
        if tail and idle_exit_s is not None and (
                idle_exit_s <= config.bulk_idle_s or self._watch.all_caught_up(idle_exit_s, fresh_s)):
            self.stop()

    def _finish(self) -> None:
        self.stop()
        for member in self._members.values():
            member.process.join(timeout=max(0.0, self._stop_by - time.monotonic()))
            if member.process.is_alive():  # did not finish its batch in time: nothing committed is lost
                member.process.kill()
                member.process.join()
        for pipe in self._members:
            pipe.close()
        self._server.close()
        self._note_exits()  # a process that died before its pipe said so


def _unwrapped(store: Statements) -> Statements:
    """The store itself, to serve as it is: an unavailable store is retried by each process (with
    its own stop), not here, where a retry would hold the process's call without it knowing why."""
    return store.store if isinstance(store, Retrying) else store


def _exit_status(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


def consumer_process(spec: RemoteSpec, config: ConsumerConfig, policy: Policy, host: Connection,
                     log_level: int) -> None:
    """One consumer in a process of its own. It says it is ready and starts reading when the host
    says "go" (all together, so that they join the group in one round rather than the first taking
    every partition and giving them up a moment later). It stops when the host says so, on
    SIGTERM/SIGINT (finishing its batch), or when the host is gone."""
    configure_logging(log_level)  # as the host's ``--log-level``
    stop, go = threading.Event(), threading.Event()
    install_stop_signals(stop)
    parent = os.getppid()

    def listen() -> None:
        while not stop.is_set():
            try:
                said = host.recv()[0] if host.poll(0.5) else None
            except (EOFError, OSError):
                said = "stop"
            if said == "go":
                go.set()
            elif said == "stop" or os.getppid() != parent:
                stop.set()
                go.set()

    relay = RelayMetrics()

    def report(member: AuditConsumer | None, error: str | None = None) -> None:
        totals = replace(member.totals, by_rule=dict(member.totals.by_rule)) if member is not None else Totals()
        with contextlib.suppress(OSError):  # the host is gone: nobody to tell
            host.send(("report", totals, relay.drain(), error))

    member: AuditConsumer | None = None
    try:
        store = Retrying(RemoteStore(spec), stop, on_retry=relay.store_retries.inc)
        member = AuditConsumer(config, store, policy, metrics=relay, after_batch=report)
        threading.Thread(target=listen, name="privaudit-host-listener", daemon=True).start()
        host.send(("ready",))
        go.wait()
        member.run(stop)
    except BaseException as exc:
        report(member, f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from exc
    report(member)
