"""The alert dispatcher: ``privaudit.violations`` in, notifications to on-call out, nothing lost.

Each round (:meth:`Dispatcher.step`):

1. **poll** violation records; each is parsed, its group found or opened (a group new to this
   process is first looked up in the history, so a group delivered before a restart is not sent
   again), and counted once per (event, rule): a repeated record never pages twice;
2. **deliver** the groups that are due (``group_wait`` after they opened) to every sink their routes
   name. A sink that is down (refused, timed out, 5xx, 408, 429) is retried with exponential backoff
   (``retry_initial`` doubling to ``retry_max``), for as long as it takes; a 4xx is recorded as
   ``rejected`` and not retried;
3. **record** changed groups in ``privaudit.alerts``;
4. **commit** per partition up to the first record whose group still has a sink to deliver to.

So offsets never pass an alert that no sink took yet: a dispatcher killed at any point re-reads
from there, and the history tells which groups were already delivered. One gap remains, and it is
narrow: the history is written after each sink's requests of a round, so a kill between a
receiver's 2xx and that write sends those groups again after the restart. Alertmanager and
PagerDuty collapse such a repeat themselves (same labels, same ``dedup_key``); the webhook carries
the group key in ``X-Privaudit-Group`` for receivers to do so.

Violations are keyed by (rule, service, party) when published, so all of a group's records share a
partition: several dispatchers in one consumer group never notify the same group.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from privaudit.bus import TP, Consumer, Record

from .config import AlertingConfig
from .groups import Delivery, Group, Status, group_of
from .history import History
from .sinks import Sink

log = logging.getLogger("privaudit.alerts")


@dataclass
class DispatchTotals:
    records: int = 0
    violations: int = 0
    repeats: int = 0
    unreadable: int = 0
    groups: int = 0
    delivered: int = 0
    rejected: int = 0
    failed_attempts: int = 0
    by_sink: dict[str, int] = field(default_factory=dict)


@dataclass
class _SinkState:
    failures: int = 0
    next_try: float = 0.0


class Dispatcher:
    def __init__(
        self,
        config: AlertingConfig,
        consumer: Consumer,
        history: History,
        sinks: dict[str, Sink],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.history = history
        self.sinks = sinks
        self.clock = clock
        self.totals = DispatchTotals()
        self.groups: dict[str, Group] = {}
        self._group_tp: dict[str, TP] = {}
        self._pending: dict[TP, deque[tuple[int, str | None]]] = {}
        self._sink_state = {name: _SinkState() for name in sinks}
        self._latest_event: datetime | None = None
        self._lock = threading.Lock()
        self._to_revoke: set[TP] = set()

    # -- one round ----------------------------------------------------------------------------

    def step(self, timeout_s: float = 0.2, max_records: int = 2000) -> int:
        records = self.consumer.poll(timeout_s, max_records)
        if self._to_revoke:
            self._forget_revoked()
        if records:
            self.ingest(records)
        self.deliver_due()
        self.record()
        self.commit()
        self._evict()
        return len(records)

    def run(self, stop: threading.Event, *, idle_exit_s: float | None = None,
            may_exit: Callable[[], bool] | None = None) -> DispatchTotals:
        """Until ``stop``; with ``idle_exit_s``, also once nothing came for that long, everything is
        delivered and committed, and ``may_exit()`` (e.g. "the consumers in this process are done")."""
        last = time.monotonic()
        try:
            while not stop.is_set():
                if self.step():
                    last = time.monotonic()
                elif (idle_exit_s is not None and time.monotonic() - last >= idle_exit_s and self.settled
                      and (may_exit is None or may_exit())):
                    break
        finally:
            self.record()
            self.consumer.close()
        return self.totals

    @property
    def settled(self) -> bool:
        """Every group delivered or rejected everywhere, every record committed."""
        return all(g.done for g in self.groups.values()) and not any(self._pending.values())

    # -- 1. ingest ----------------------------------------------------------------------------

    def ingest(self, records: list[Record]) -> None:
        parsed: list[tuple[Record, dict[str, Any] | None, Group | None]] = []
        for r in records:
            self.totals.records += 1
            try:
                if r.value is None:
                    raise ValueError("a tombstone (no value)")
                v = json.loads(r.value)
                fresh = group_of(v, self.config.group_window)  # reads occurred_at, rule, service
                uuid.UUID(str(v["event_id"]))  # the history keeps it as a UUID
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.error("unreadable violation record %s:%d@%d skipped: %s", r.topic, r.partition, r.offset, exc)
                self.totals.unreadable += 1
                parsed.append((r, None, None))
                continue
            parsed.append((r, v, fresh))
        opened: dict[str, Group] = {}
        for _, _, new in parsed:
            if new is not None and new.key not in self.groups:
                opened.setdefault(new.key, new)  # the first violation seen is the notification's example
        known = self.history.load(list(opened)) if opened else {}
        now = self.clock()
        for key, g in opened.items():
            before = known.get(key, {})
            g.count = max((c for _, c, _ in before.values()), default=0)  # counted before a restart
            for name in self.config.sinks_for(g.severity, g.rule, g.service):
                status, _, attempts = before.get(name, ("pending", 0, 0))
                d = Delivery(name, _kept(status), attempts, due=now + self.config.group_wait)
                g.deliveries[name] = d
            self.groups[key] = g
            self.totals.groups += 1
        for r, v, seen in parsed:
            tp = (r.topic, r.partition)
            queue = self._pending.setdefault(tp, deque())
            if v is None or seen is None:
                queue.append((r.offset, None))
                continue
            group = self.groups[seen.key]
            self._group_tp.setdefault(group.key, tp)
            if group.add(v, seen.first_seen):
                self.totals.violations += 1
            else:
                self.totals.repeats += 1
            if self._latest_event is None or seen.first_seen > self._latest_event:
                self._latest_event = seen.first_seen
            queue.append((r.offset, group.key))

    # -- 2. deliver ---------------------------------------------------------------------------

    def deliver_due(self) -> None:
        now = self.clock()
        due: dict[str, list[Group]] = {}
        for g in self.groups.values():
            for name, d in g.deliveries.items():
                if not d.done and d.due <= now:
                    due.setdefault(name, []).append(g)
        for name, groups in due.items():
            state = self._sink_state[name]
            if state.next_try > now:
                continue  # the sink is backing off: its groups wait together
            outcome = self.sinks[name].send(groups)
            failed = False
            for g in groups:
                status, error = outcome[g.key]
                d = g.deliveries[name]
                d.attempts += 1
                d.last_error = error
                g.dirty = True
                if status == "delivered":
                    d.status, d.notified_at = "delivered", datetime.now(UTC)
                    self.totals.delivered += 1
                    self.totals.by_sink[name] = self.totals.by_sink.get(name, 0) + 1
                elif status == "rejected":
                    d.status = "rejected"
                    self.totals.rejected += 1
                    log.error("sink %s rejected group %s: %s (recorded, not retried)", name, g.key, error)
                else:
                    d.status = "retrying"
                    failed = True
            self.record()  # at once: the history, not the next round, says what was delivered
            if failed:
                state.failures += 1
                delay = min(self.config.retry_max, self.config.retry_initial * 2 ** (state.failures - 1))
                state.next_try = now + delay
                self.totals.failed_attempts += 1
                log.warning("sink %s unavailable (%s); retrying in %.1f s", name,
                            next(iter(outcome.values()))[1], delay)
            else:
                state.failures, state.next_try = 0, 0.0

    # -- 3. record, 4. commit -----------------------------------------------------------------

    def record(self) -> None:
        changed = [g for g in self.groups.values() if g.dirty]
        if changed:
            self.history.save(changed)
            for g in changed:
                g.dirty = False

    def commit(self) -> None:
        offsets: dict[TP, int] = {}
        for tp, queue in self._pending.items():
            last = None
            while queue:
                offset, key = queue[0]
                g = self.groups.get(key) if key is not None else None
                if g is not None and not g.done:
                    break
                last = offset
                queue.popleft()
            if last is not None:
                offsets[tp] = last + 1
        if offsets:
            self.consumer.commit(offsets)

    def _evict(self) -> None:
        """Forget groups delivered everywhere whose window closed one window ago (event time);
        a late violation of one is looked up in the history again."""
        if self._latest_event is None or len(self.groups) < 1000:
            return
        horizon = self._latest_event - timedelta(seconds=self.config.group_window)
        referenced = {key for q in self._pending.values() for _, key in q}
        for key in [k for k, g in self.groups.items() if g.done and not g.dirty and g.window_end < horizon
                    and k not in referenced]:
            del self.groups[key]
            self._group_tp.pop(key, None)

    def revoked(self, tps: set[TP]) -> None:
        """Called by the client (on its own thread with kafka-python 3): only note the partitions;
        :meth:`step` forgets them on the loop's thread."""
        with self._lock:
            self._to_revoke |= tps

    def _forget_revoked(self) -> None:
        """Another member reads these partitions now: drop what came from them and is not done
        (it will re-read and deliver it); what is done stays in the history."""
        with self._lock:
            tps, self._to_revoke = self._to_revoke, set()
        for tp in tps:
            self._pending.pop(tp, None)
        for key in [k for k, tp in self._group_tp.items() if tp in tps]:
            if not self.groups[key].done:
                del self.groups[key]
            self._group_tp.pop(key, None)


def _kept(status: str) -> Status:
    """A delivery's status as the history has it: done stays done; anything else is tried again."""
    return "delivered" if status == "delivered" else "rejected" if status == "rejected" else "pending"
