"""Running panels against the store with validated filters (the only way a filter reaches SQL is
as a ClickHouse query parameter)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from privaudit.checker.rules import RULES
from privaudit.errors import ConfigError, StoreError, excerpt
from privaudit.policy import Policy
from privaudit.store import Statements, query_read_only

from .panels import BY_ID, EVENT_SQL, EVENT_VIOLATIONS_SQL, FILTERS_SQL, SUBJECT_SQL, Panel

SEVERITIES = ("critical", "high", "medium")


class BadFilter(ConfigError):
    """A filter value the dashboard refuses (HTTP 400)."""


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime  # exclusive
    service: str = ""
    rule: str = ""
    severity: str = ""

    @classmethod
    def parse(cls, args: dict[str, str], default_start: datetime, default_end: datetime) -> Filters:
        start = _day(args.get("from"), "from") if args.get("from") else default_start
        end = _day(args.get("to"), "to") + timedelta(days=1) if args.get("to") else default_end
        if end <= start:
            raise BadFilter("'to' must not be before 'from'")
        rule, severity, service = args.get("rule", ""), args.get("severity", ""), args.get("service", "")
        if rule and rule not in RULES:
            raise BadFilter(f"unknown rule {excerpt(rule)}")
        if severity and severity not in SEVERITIES:
            raise BadFilter(f"unknown severity {excerpt(severity)}")
        if len(service) > 200:
            raise BadFilter("service: too long")
        return cls(start, end, service, rule, severity)

    @property
    def bucket_s(self) -> int:
        return 3600 if self.end - self.start <= timedelta(days=4) else 86400

    def parameters(self) -> dict[str, Any]:
        return {"from": self.start, "to": self.end, "service": self.service, "rule": self.rule,
                "severity": self.severity, "bucket": self.bucket_s}


#: The days a filter may name: what ClickHouse's DateTime64 holds, with a day to spare either side.
FIRST_DAY, LAST_DAY = date(1900, 1, 2), date(2299, 12, 30)


def _day(text: str | None, name: str) -> datetime:
    try:
        day = date.fromisoformat(str(text))
    except ValueError:
        raise BadFilter(f"{name}: not a date (YYYY-MM-DD): {excerpt(text)}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadFilter(f"{name}: {day.isoformat()} is out of range "
                        f"({FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()})")
    return datetime.combine(day, time(), UTC)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class Queries:
    def __init__(self, store: Statements, policy: Policy | None = None) -> None:
        self.store = store
        self.purpose_text: dict[str, str] = {}
        if policy is not None:
            for version in policy.versions:
                self.purpose_text.update(version.purpose_text)

    def bounds(self) -> dict[str, Any]:
        _, rows = self.store.query(FILTERS_SQL)
        first, last, services = rows[0] if rows else (None, None, [])
        if not isinstance(first, datetime) or first.year < 2000:  # an empty table gives the epoch
            now = datetime.now(UTC)
            first = last = now
        return {"first": _plain(first)[:10], "last": _plain(last)[:10], "services": sorted(services or []),
                "rules": [{"id": r.id, "title": r.title, "severity": r.severity} for r in RULES.values()],
                "severities": list(SEVERITIES)}

    def default_filters(self, args: dict[str, str]) -> Filters:
        """The filters given; a missing end of the time range is the data's."""
        if args.get("from") and args.get("to"):
            return Filters.parse(args, datetime.min, datetime.min)
        b = self.bounds()
        return Filters.parse(args, _day(b["first"], "from"), _day(b["last"], "to") + timedelta(days=1))

    def panel(self, panel: Panel | str, filters: Filters) -> dict[str, Any]:
        panel = BY_ID[panel] if isinstance(panel, str) else panel
        columns, rows = self.store.query(panel.sql, filters.parameters())
        out: dict[str, Any] = {"id": panel.id, "title": panel.title, "kind": panel.kind, "columns": list(columns),
                               "rows": [[_plain(v) for v in row] for row in rows], "note": panel.note}
        if panel.purpose_column is not None:
            i = columns.index(panel.purpose_column)
            out["columns"].append("purpose_text")
            for row in out["rows"]:
                row.append(self.purpose_text.get(row[i], ""))
        return out

    def event(self, event_id: str) -> dict[str, Any] | None:
        try:
            uuid.UUID(event_id)
        except ValueError:
            raise BadFilter(f"not an event id: {event_id!r}") from None
        columns, rows = self.store.query(EVENT_SQL, {"id": event_id})
        if not rows:
            return None
        event = {c: _plain(v) for c, v in zip(columns, rows[0], strict=True)}
        vcols, vrows = self.store.query(EVENT_VIOLATIONS_SQL, {"id": event_id})
        event["purpose_text"] = self.purpose_text.get(event.get("purpose") or "", "")
        return {"event": event, "violations": [{c: _plain(v) for c, v in zip(vcols, r, strict=True)} for r in vrows]}

    def sql(self, text: str) -> dict[str, Any]:
        """A read, nothing else (what ``privaudit sql`` sends while this process holds the store):
        :func:`~privaudit.store.readonly.query_read_only`."""
        try:
            columns, rows = query_read_only(self.store, text)
        except StoreError as exc:
            raise BadFilter(str(exc)) from exc
        return {"columns": list(columns), "rows": [[_plain(v) for v in r] for r in rows]}

    def subject(self, subject_id: str) -> dict[str, Any]:
        if not subject_id or len(subject_id) > 200:
            raise BadFilter("subject: empty or too long")
        columns, rows = self.store.query(SUBJECT_SQL, {"subject": subject_id})
        return {"subject_id": subject_id, "columns": list(columns), "rows": [[_plain(v) for v in r] for r in rows]}
