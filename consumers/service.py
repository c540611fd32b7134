"""Running the pipeline: N consumers, one bulk stage, one store client.

The embedded store admits one process per data directory, so ``privaudit run`` hosts everything
that touches it in one process. The consumers run there as threads sharing one :class:`Store`
(``consumers``), or, to check on more than one core, each in a process of its own (``processes``)
that reaches the store through this one (:mod:`.processes`); the bulk stage, the alert
dispatcher and the dashboard stay in the host either way. Against a ClickHouse server the same code
also runs as separate ``privaudit consume`` processes, as many as wanted.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from privaudit.bus import make_producer
from privaudit.errors import BrokerError, StoreUnavailable
from privaudit.policy import Policy
from privaudit.store import Retrying, Statements, Store

from .bulk import BulkStage
from .config import ConsumerConfig
from .metrics import Metrics
from .processes import ProcessHost
from .runner import AuditConsumer, Totals

log = logging.getLogger("privaudit.consumer")


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
    bulk = BulkStage(retrying, policy, bulk_producer, partitions=partitions, topic=config.topic, stop=stop,
                     on_publish_retry=metrics.publish_retries.inc) if bulk_stage else None
    try:
        if processes > 0:
            host = ProcessHost(config, retrying, policy, bulk, processes=processes, partitions=partitions,
                               idle_exit_s=idle_exit_s, metrics=metrics)
            totals = host.run(stop, tick)
        else:
            totals = _run_threads(config, retrying, policy, bulk, metrics, consumers=consumers,
                                  partitions=partitions, idle_exit_s=idle_exit_s, stop=stop, tick=tick)
        if bulk is not None:
            try:
                bulk.run_once(final=idle_exit_s is not None)  # a finite run: all loaded time is complete
            except (BrokerError, StoreUnavailable) as exc:
                if not stop.is_set():
                    raise
                # stopped while waiting: the next run's bulk stage scans from its own journal
                log.warning("the bulk stage: stopped while waiting: %s", exc)
    finally:
        if show:
            sys.stderr.write("\n")  # after the progress line, before any error
        if bulk_producer is not None:
            bulk_producer.close(10)
    return RunResult(totals, bulk.found if bulk is not None else 0, time.monotonic() - started)


def _run_threads(config: ConsumerConfig, store: Statements, policy: Policy, bulk: BulkStage | None, metrics: Metrics, *,
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
