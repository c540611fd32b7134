"""Running the pipeline: N consumers, one bulk stage, one store client.

The embedded store admits one process per data directory, so ``privaudit run`` hosts everything
that touches it in one process. The consumers run there as threads sharing one :class:`Store`
(``consumers``), or, to check on more than one core, each in a process of its own (``processes``)
that reaches the store through this one (:mod:`privaudit.processes`); the bulk stage, the alert
dispatcher and the dashboard stay in the host either way. Against a ClickHouse server the same code
also runs as separate ``privaudit consume`` processes, as many as wanted.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from privaudit.backoff import with_backoff
from privaudit.bus import ensure_topics, make_producer
from privaudit.consumers import AuditConsumer, BulkStage, ConsumerConfig, Totals
from privaudit.consumers.metrics import Metrics
from privaudit.policy import Policy
from privaudit.processes import ProcessHost
from privaudit.errors import RegistryUnavailable, StoreUnavailable
from privaudit.schemas.schema_registry import SchemaRegistry
from privaudit.store import Retrying, Store, shown_dsn


@dataclass
class RunResult:
    totals: list[Totals]
    bulk_violations: int
    elapsed_s: float

    @property
    def by_rule(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.totals:
            for rule, n in t.by_rule.items():
                out[rule] = out.get(rule, 0) + n
        if self.bulk_violations:
            out["PA-012"] = out.get("PA-012", 0) + self.bulk_violations
        return dict(sorted(out.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": sum(t.records for t in self.totals),
            "loaded_events": sum(t.events for t in self.totals),
            "violations": self.by_rule,
            "dlq": sum(t.dead for t in self.totals),
            "elapsed_s": round(self.elapsed_s, 2),
        }


class Companion(threading.Thread):
    """A thread beside the consumers (the alert dispatcher): if it fails, ``stop_all`` is set so the
    whole process stops, and :meth:`raise_error` re-raises its error on the main thread rather
    than letting it die unseen while the consumers go on."""

    def __init__(self, target: Any, stop_all: threading.Event, *, name: str, **kwargs: Any) -> None:
        super().__init__(name=name)
        self._work, self._stop_all, self._kwargs = target, stop_all, kwargs
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work(**self._kwargs)
        except BaseException as exc:  # re-raised on the main thread by raise_error()
            self.error = exc
            self._stop_all.set()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT finish the batch in hand, commit, and exit 0."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def open_dependencies(dsn: str, bootstrap: str | None, *, stop: threading.Event, wait_s: float,
                      retention_days: int | None = None, partitions: int = 6,
                      schema_registry: str | None = None) -> Store:
    """At start-up: the schema registry, if given, reached once; the store, migrated
    (``retention_days`` None keeps the store's TTL setting); and (given ``bootstrap``) the
    pipeline's topics. A registry, ClickHouse server or broker not reachable yet (a restart,
    services started together) is tried again with growing pauses for up to ``wait_s``, each
    failure logged; then the last error is raised. An embedded store opens or fails at once:
    nothing else can bring it up."""
    if schema_registry is not None:
        registry = SchemaRegistry(schema_registry)
        with_backoff(registry.probe, retry_on=RegistryUnavailable, stop=stop,
                     what=f"reaching the schema registry at {registry.shown}", give_up_after_s=wait_s)

    def store_up() -> Store:
        store = Store.connect(dsn)
        try:
            store.migrate(retention_days)
        except BaseException:
            store.close()
            raise
        return store

    store = with_backoff(store_up, retry_on=StoreUnavailable, stop=stop, what=f"opening ClickHouse at {shown_dsn(dsn)}",
                         give_up_after_s=wait_s)
    if bootstrap is not None:
        try:
            ensure_topics(bootstrap, partitions, timeout_s=wait_s, stop=stop)
        except BaseException:
            store.close()
            raise
    return store


def run_consumers(
    config: ConsumerConfig,
    store: Store,
    policy: Policy,
    *,
    consumers: int = 1,
    processes: int = 0,
    partitions: int,
    bulk_stage: bool = True,
    idle_exit_s: float | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    stop: threading.Event | None = None,
    progress: bool | None = None,
    observe: Callable[[list[Totals]], None] | None = None,
) -> RunResult:
    """Run the consumers until ``stop`` (or idle for ``idle_exit_s``): ``consumers`` threads here,
    or with ``processes`` > 0 that many consumer processes, served the store from here.
    ``observe`` sees the members' totals as they change (about once a second with threads, after
    every batch from processes). The consumers' and the bulk stage's statements are retried while
    the store is unavailable (:mod:`privaudit.store.retry`), and their publishes while Kafka refuses
    them, until it is back or ``stop`` is set."""
    stop = stop or threading.Event()
    started = time.monotonic()
    metrics = Metrics()
    retrying = Retrying(store, stop, on_retry=metrics.store_retries.inc)
    if metrics_port:
        metrics.serve(metrics_port, metrics_host)
    show = sys.stderr.isatty() if progress is None else progress

    def tick(totals: list[Totals]) -> None:
        if show:
            _show(totals, started)
        if observe is not None:
            observe(totals)

    bulk_producer = make_producer(config.client, config.bootstrap) if bulk_stage else None
    bulk = BulkStage(retrying, policy, bulk_producer, partitions=partitions, topic=config.topic, stop=stop,  # type: ignore[arg-type]
                     on_publish_retry=metrics.publish_retries.inc) if bulk_stage else None
    try:
        if processes > 0:
            host = ProcessHost(config, retrying, policy, bulk, processes=processes, partitions=partitions,
                               idle_exit_s=idle_exit_s, metrics=metrics)
            totals = host.run(stop, tick)
        else:
            totals = _run_threads(config, retrying, policy, bulk, metrics, consumers=consumers,  # type: ignore[arg-type]
                                  partitions=partitions, idle_exit_s=idle_exit_s, stop=stop, tick=tick)
        if bulk is not None:
            bulk.run_once(final=idle_exit_s is not None)  # a finite run: all loaded time is complete
    finally:
        if show:
            sys.stderr.write("\n")  # after the progress line, before any error
        if bulk_producer is not None:
            bulk_producer.close(10)
    return RunResult(totals, bulk.found if bulk is not None else 0, time.monotonic() - started)


def _run_threads(config: ConsumerConfig, store: Store, policy: Policy, bulk: BulkStage | None, metrics: Metrics, *,
                 consumers: int, partitions: int, idle_exit_s: float | None, stop: threading.Event,
                 tick: Callable[[list[Totals]], None]) -> list[Totals]:
    members = [
        AuditConsumer(replace(config, name=f"consumer-{i + 1}"), store, policy, metrics=metrics, bulk=bulk)
        for i in range(consumers)
    ]

    def covered() -> bool:  # until-idle: every partition is owned by one of this process's members
        owned = set().union(*(m.owned for m in members))
        return len({p for t, p in owned if t == config.topic}) >= partitions

    for member in members:
        member.covered = covered
    errors: list[BaseException] = []

    def work(member: AuditConsumer) -> None:
        try:
            member.run(stop, idle_exit_s=idle_exit_s)
        except BaseException as exc:  # surfaced after the other members stopped
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(m,), name=m.config.name) for m in members]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=1.0)
        tick([m.totals for m in members])
    if errors:
        raise errors[0]
    return [m.totals for m in members]


def _show(totals: list[Totals], started: float) -> None:
    records = sum(t.records for t in totals)
    violations = sum(t.violations for t in totals)
    dead = sum(t.dead for t in totals)
    lags = [t.lag for t in totals if t.lag is not None]
    elapsed = max(1e-6, time.monotonic() - started)
    sys.stderr.write(
        f"\rconsumed {records:,} records ({records / elapsed:,.0f}/s) · violations {violations:,} · "
        f"DLQ {dead:,} · lag {sum(lags) if lags else '?'}   "
    )
    sys.stderr.flush()
