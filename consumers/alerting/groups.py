"""Alert groups: violations that page once together.

A violation's **group key** is its rule, its service, the party it concerns (the recipient or
processor, else the actor) and the event-time window it falls in (``group_window``, tumbling,
aligned to the epoch). Event time, not arrival time, so that a violation replayed after a restart
or re-published upstream lands in the same group, and the history tells that the group was already
notified. A group is notified once per sink, carrying its count; later violations of the group only
raise the count in ``privaudit.alerts``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from privaudit.checker.rules import RULES

Status = Literal["pending", "retrying", "delivered", "rejected"]
DONE: frozenset[str] = frozenset({"delivered", "rejected"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass
class Delivery:
    sink: str
    status: Status = "pending"
    attempts: int = 0
    due: float = 0.0  # time.monotonic() of the next attempt
    last_error: str = ""
    notified_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE


@dataclass
class Group:
    key: str
    rule: str
    severity: str
    service: str
    party: str  # the recipient or processor, else the actor, else ''
    window_start: datetime
    window_end: datetime
    example: dict[str, Any]  # the first violation seen, as published
    first_seen: datetime
    last_seen: datetime
    count: int = 0
    seen: set[tuple[str, str]] = field(default_factory=set)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    dirty: bool = True  # history row out of date

    @property
    def title(self) -> str:
        rule = RULES.get(self.rule)
        return rule.title if rule else self.rule

    @property
    def done(self) -> bool:
        return all(d.done for d in self.deliveries.values())

    def add(self, violation: dict[str, Any], at: datetime) -> bool:
        """Count a violation once; False for a repeat of one already counted."""
        ident = (str(violation.get("event_id")), str(violation.get("rule")))
        if ident in self.seen:
            return False
        self.seen.add(ident)
        self.count += 1
        self.first_seen = min(self.first_seen, at)
        self.last_seen = max(self.last_seen, at)
        self.dirty = True
        return True


def group_of(violation: dict[str, Any], window_s: float) -> Group:
    """A new, empty group for ``violation`` (see the module's doc for the key)."""
    at = parse_time(violation["occurred_at"])
    counterparty, actor = violation.get("counterparty"), violation.get("actor_id")
    party = counterparty or actor or ""
    start = _EPOCH + timedelta(seconds=(at - _EPOCH).total_seconds() // window_s * window_s)
    end = start + timedelta(seconds=window_s)
    rule, service = str(violation["rule"]), str(violation["service"])
    key = group_key(rule, service, party, start)
    return Group(key=key, rule=rule, severity=str(violation.get("severity") or RULES[rule].severity), service=service,
                 party=party, window_start=start, window_end=end, example=violation,
                 first_seen=at, last_seen=at)


def group_key(rule: str, service: str, party: str, window_start: datetime) -> str:
    """Stable across processes and restarts; short enough for PagerDuty's dedup_key and labels."""
    text = f"{rule}|{service}|{party}|{window_start.astimezone(UTC).isoformat()}"
    return f"{rule}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
