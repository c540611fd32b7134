"""Alert history in ClickHouse (``privaudit.alerts``): one row per (group, sink), newest wins.

It is also the dispatcher's memory across restarts: a group found here as delivered (or rejected)
to a sink is never sent to that sink again, whatever is replayed upstream.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from privaudit.store import Statements
from privaudit.store.ddl import ALERT_COLUMN_NAMES

from .groups import Delivery, Group

#: group key -> sink -> (status, count, attempts)
Known = dict[str, dict[str, tuple[str, int, int]]]


class History(Protocol):
    def load(self, keys: list[str]) -> Known: ...
    def save(self, groups: list[Group]) -> None: ...


class ClickHouseHistory:
    def __init__(self, store: Statements) -> None:
        self.store = store
        self._last = datetime.now(UTC)

    def load(self, keys: list[str]) -> Known:
        out: Known = {}
        for i in range(0, len(keys), 1000):
            _, rows = self.store.query(
                f"SELECT group_key, sink, status, count, attempts FROM {self.store.database}.alerts FINAL "
                "WHERE group_key IN {keys:Array(String)}",
                {"keys": keys[i:i + 1000]},
            )
            for key, sink, status, count, attempts in rows:
                out.setdefault(key, {})[sink] = (status, int(count), int(attempts))
        return out

    def save(self, groups: list[Group]) -> None:
        rows = []
        for g in groups:
            stamp = self._stamp()
            sinks: list[Delivery | None] = [*g.deliveries.values()] or [None]  # None: a row saying "unrouted"
            for d in sinks:
                rows.append((
                    g.key, d.sink if d is not None else "", g.rule, g.severity, g.service, g.party, g.window_start,
                    g.window_end, g.first_seen, g.last_seen, g.count, d.status if d is not None else "unrouted",
                    d.attempts if d is not None else 0, (d.last_error if d is not None else "")[:1000],
                    str(g.example.get("event_id")), str(g.example.get("subject_id") or ""),
                    str(g.example.get("policy_version") or ""), d.notified_at if d is not None else None, stamp,
                ))
        if rows:
            self.store.insert("alerts", [list(c) for c in zip(*rows, strict=True)], ALERT_COLUMN_NAMES)

    def _stamp(self) -> datetime:
        """Strictly increasing, so the newest row of a (group, sink) always wins the merge."""
        now = datetime.now(UTC)
        self._last = now if now > self._last else self._last + timedelta(milliseconds=1)
        return self._last


class MemoryHistory:
    """For unit tests of the dispatcher's logic (the ClickHouse one is tested for real)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[str, int, int]] = {}
        self.saves = 0

    def load(self, keys: list[str]) -> Known:
        out: Known = {}
        for (key, sink), value in self.rows.items():
            if key in keys:
                out.setdefault(key, {})[sink] = value
        return out

    def save(self, groups: list[Group]) -> None:
        self.saves += 1
        for g in groups:
            for d in g.deliveries.values() or []:
                self.rows[(g.key, d.sink)] = (d.status, g.count, d.attempts)
            if not g.deliveries:
                self.rows[(g.key, "")] = ("unrouted", g.count, 0)
