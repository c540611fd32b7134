"""Running panels against the store with validated filters (the only way a filter reaches SQL is
as a ClickHouse query parameter)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from privaudit.checker.rules import RULES
from privaudit.errors import ConfigError, PrivauditError, StoreError, excerpt
from privaudit.i18n import DEFAULT_LANGUAGE, KST, catalogue, in_kst
from privaudit.policy import Policy
from privaudit.settings import ENV_PSEUDONYM_KEY
from privaudit.store import Statements, query_read_only

from .panels import BY_ID, EVENT_SQL, EVENT_VIOLATIONS_SQL, FILTERS_SQL, SUBJECT_SECTIONS, Panel
from .words import names, rule_text, said

SEVERITIES = ("critical", "high", "medium")
#: what a pseudonym looks like (producers.pseudonym: "p-" and 32 hex digits)
PSEUDONYM = re.compile(r"p-[0-9a-f]{32}")


class BadFilter(ConfigError):
    """A filter value the dashboard refuses (HTTP 400)."""


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime  # exclusive
    service: str = ""
    rule: str = ""
    severity: str = ""
    who: str = ""  # "all": systems too; else people only (the staff panel)
    actor: str = ""  # the downloads' actor
    reason: str = ""  # the downloads: "with" or "without" a reason; empty: both

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
        who, actor, reason = args.get("who", ""), args.get("actor", ""), args.get("reason", "")
        for name, value in (("service", service), ("actor", actor)):
            if len(value) > 200:
                raise BadFilter(f"{name}: too long")
        if who not in ("", "all", "staff"):
            raise BadFilter(f"who: 'staff' or 'all', not {excerpt(who)}")
        if reason not in ("", "with", "without"):
            raise BadFilter(f"reason: 'with' or 'without', not {excerpt(reason)}")
        return cls(start, end, service, rule, severity, who, actor, reason)

    @property
    def bucket_s(self) -> int:
        return 3600 if self.end - self.start <= timedelta(days=4) else 86400

    def parameters(self) -> dict[str, Any]:
        return {"from": self.start.astimezone(UTC), "to": self.end.astimezone(UTC), "service": self.service,
                "rule": self.rule, "severity": self.severity, "who": self.who, "actor": self.actor,
                "reason": self.reason, "bucket": self.bucket_s}


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
    return datetime.combine(day, time(), KST)  # a person's day: from 00:00 KST


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):  # stored in UTC, read in KST: 2026-11-03T14:22:05.000+09:00
        return in_kst(value).isoformat(timespec="milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class Queries:
    """The dashboard's reads. ``pseudonymize``: the services' keyed pseudonymisation, to find a
    member by phone number or e-mail address (computed here, never logged or stored); without it
    the search takes pseudonyms only."""

    def __init__(self, store: Statements, policy: Policy | None = None,
                 pseudonymize: Callable[[str], str] | None = None) -> None:
        self.store = store
        self.policy = policy
        self.pseudonymize = pseudonymize
        self._words: dict[str, dict[str, dict[str, str]]] = {}
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
        return {"first": _plain(first)[:10], "last": _plain(last)[:10], "today": _plain(datetime.now(UTC))[:10],
                "services": sorted(services or []),
                "rules": [{"id": r.id, "severity": r.severity} for r in RULES.values()],
                "severities": list(SEVERITIES), "search": self.pseudonymize is not None}

    def messages(self, lang: str) -> dict[str, Any]:
        """What the page needs to speak ``lang``: the catalogue and the names of codes."""
        return {"lang": lang, "catalogue": dict(catalogue(lang)), "names": names(self.policy, lang),
                "rules": {rid: rule_text(rid, lang) for rid in RULES}}

    def default_filters(self, args: dict[str, str]) -> Filters:
        """The filters given; a missing end of the time range is the data's."""
        if args.get("from") and args.get("to"):
            return Filters.parse(args, datetime.min, datetime.min)
        b = self.bounds()
        return Filters.parse(args, _day(b["first"], "from"), _day(b["last"], "to") + timedelta(days=1))

    def words(self, lang: str) -> dict[str, dict[str, str]]:
        if lang not in self._words:
            self._words[lang] = names(self.policy, lang)
        return self._words[lang]

    def panel(self, panel: Panel | str, filters: Filters, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
        panel = BY_ID[panel] if isinstance(panel, str) else panel
        columns, rows = self.store.query(panel.sql, filters.parameters())
        plain = [[_plain(v) for v in row] for row in rows]
        out: dict[str, Any] = {"id": panel.id, "title": panel.title, "kind": panel.kind, "note": panel.note,
                               "columns": said(list(columns), plain, lang, self.words(lang)), "rows": plain}
        if panel.purpose_column is not None and panel.purpose_column in columns:  # (no rows: no columns)
            i = columns.index(panel.purpose_column)
            out["columns"].append("purpose_text")
            for row in out["rows"]:
                row.append(self.purpose_text.get(row[i], ""))
        return out

    def event(self, event_id: str, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any] | None:
        try:
            uuid.UUID(event_id)
        except ValueError:
            raise BadFilter(f"not an event id: {excerpt(event_id)}") from None
        columns, rows = self.store.query(EVENT_SQL, {"id": event_id})
        if not rows:
            return None
        event = {c: _plain(v) for c, v in zip(columns, rows[0], strict=True)}
        vcols, vrows = self.store.query(EVENT_VIOLATIONS_SQL, {"id": event_id})
        event["purpose_text"] = self.purpose_text.get(event.get("purpose") or "", "")
        plain = [[_plain(v) for v in r] for r in vrows]
        vcols = said(list(vcols), plain, lang, self.words(lang))
        violations = [dict(zip(vcols, r, strict=True)) for r in plain]
        for v in violations:  # the rule's title, its article and what to do, beside the verdict
            v.update({k: w for k, w in rule_text(str(v["rule"]), lang).items() if k in ("title", "law", "remedy")})
        return {"event": event, "violations": violations}

    def sql(self, text: str) -> dict[str, Any]:
        """A read, nothing else (what ``privaudit sql`` sends while this process holds the store):
        :func:`~privaudit.store.readonly.query_read_only`."""
        try:
            columns, rows = query_read_only(self.store, text)
        except StoreError as exc:
            raise BadFilter(str(exc)) from exc
        return {"columns": list(columns), "rows": [[_plain(v) for v in r] for r in rows]}

    def find_subject(self, text: str) -> str:
        """The pseudonym of what was typed in the search box: a pseudonym as it is, a phone number
        or an e-mail address through the configured key. The text is not logged, stored or echoed."""
        text = text.strip()
        if PSEUDONYM.fullmatch(text):
            return text
        if not text or len(text) > 320:
            raise BadFilter("search: type a pseudonym (p-...), a phone number or an e-mail address")
        if self.pseudonymize is None:
            raise BadFilter("this console has no pseudonymisation key: search by pseudonym (p-...), or start it with "
                            f"{ENV_PSEUDONYM_KEY} set to the services' key")
        try:
            return self.pseudonymize(text)
        except PrivauditError:
            raise BadFilter("search: not an identifier that can be pseudonymised") from None

    def subject(self, subject_id: str, filters: Filters, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
        """One member's page: each section of :data:`~.panels.SUBJECT_SECTIONS` over the period."""
        if not PSEUDONYM.fullmatch(subject_id) and (not subject_id or len(subject_id) > 200):
            raise BadFilter("subject: empty or too long")
        params = {**filters.parameters(), "subject": subject_id}
        out: dict[str, Any] = {"subject_id": subject_id, "from": _plain(filters.start)[:10],
                               "to": _plain(filters.end - timedelta(days=1))[:10]}
        for name, sql in SUBJECT_SECTIONS.items():
            columns, rows = self.store.query(sql, params)
            plain = [[_plain(v) for v in r] for r in rows]
            out[name] = {"columns": said(list(columns), plain, lang, self.words(lang)), "rows": plain}
        summary = dict(zip(out["summary"]["columns"], out["summary"]["rows"][0], strict=True))
        if not summary["events"]:  # an empty range gives the epoch for min/max
            summary["first_at"] = summary["last_at"] = None
            out["summary"]["rows"] = [list(summary.values())]
        return out
