"""``privaudit report --month YYYY-MM``: the monthly inspection of access records.

The Safety Measures standard (개인정보의 안전성 확보조치 기준, Art. 8) asks a controller to keep
access records (who, when, from where, what was processed, for whom) for at least two years for
a service like this one, and to inspect them at least monthly, looking in particular at downloads
and at their reasons. This report is that inspection, for one calendar month (KST), from what the
pipeline stored:

1. access records by task (수행업무: view, update, delete, download...), people apart from
   systems, and each staff member by task and purpose;
2. every download or export with its reason, the reasons listed for the reviewer to confirm,
   and those without one;
3. incomplete records (no actor or no source address);
4. bulk accesses (PA-012);
5. the violations found, and whether on-call was alerted (a delivered alert group covering them);
6. the audit log's own retention;
7. the integrity of the record (the latest ``privaudit verify``, the signed chain heads).

One printable HTML page, self-contained (no external assets), in Korean (codes alongside) or in
English; :func:`figures` gives its numbers as JSON (``report --json``).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from privaudit import __version__
from privaudit.errors import ConfigError
from privaudit.i18n import DEFAULT_LANGUAGE, KST, N_, in_kst, kst_text, translator
from privaudit.policy import Policy
from privaudit.settings import MIN_RETENTION_DAYS
from privaudit.store import Statements

from .panels import DOWNLOADS, EVENTS, IN_RANGE, INCOMPLETE
from .words import COLUMNS, names, rule_text, said


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        try:
            at = datetime.strptime(text, "%Y-%m")
        except ValueError:
            raise ConfigError(f"--month: not a month (YYYY-MM): {text!r}") from None
        return cls(at.year, at.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=KST)

    @property
    def end(self) -> datetime:
        return datetime(self.year + self.month // 12, self.month % 12 + 1, 1, tzinfo=KST)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


#: people: staff, and processors' staff (a processor's account is a person at the processor)
PEOPLE = "actor_type IN ('STAFF', 'PROCESSOR')"

SECTIONS: dict[str, str] = {
    # 수행업무: what was done, by people and by systems apart
    "by_task": (
        f"SELECT ifNull(action, '') AS action, countIf({PEOPLE}) AS staff_records, "
        f"uniqExactIf(actor_id, {PEOPLE}) AS staff, countIf(actor_type = 'SYSTEM') AS system_records, "
        f"uniqExactIf(actor_id, actor_type = 'SYSTEM') AS systems, uniqExact(subject_id) AS subjects, "
        f"sum(record_count) AS rows_touched FROM {EVENTS} WHERE type = 'access' AND {IN_RANGE} "
        f"GROUP BY action ORDER BY action"
    ),
    "staff": (
        f"SELECT ifNull(actor_id, '(none)') AS actor, ifNull(action, '') AS action, ifNull(purpose, '') AS purpose, "
        f"count() AS records, uniqExact(subject_id) AS subjects, sum(record_count) AS rows_touched "
        f"FROM {EVENTS} WHERE type = 'access' AND {PEOPLE} AND {IN_RANGE} GROUP BY actor, action, purpose "
        f"ORDER BY actor, action, purpose"
    ),
    "systems": (
        f"SELECT ifNull(actor_id, '(none)') AS actor, ifNull(action, '') AS action, ifNull(purpose, '') AS purpose, "
        f"count() AS records, uniqExact(subject_id) AS subjects FROM {EVENTS} "
        f"WHERE type = 'access' AND actor_type = 'SYSTEM' AND {IN_RANGE} GROUP BY actor, action, purpose "
        f"ORDER BY records DESC, actor LIMIT 300"
    ),
    "downloads": (
        f"SELECT occurred_at, service, ifNull(actor_id, '') AS actor, ifNull(action, '') AS action, "
        f"ifNull(purpose, '') AS purpose, "
        f"record_count, ifNull(reason, '') AS reason, subject_id, toString(event_id) AS event_id FROM {EVENTS} "
        f"WHERE type = 'access' AND action IN {DOWNLOADS} AND {IN_RANGE} ORDER BY occurred_at"
    ),
    # the reasons given, for the reviewer to confirm one by one
    "reasons": (
        f"SELECT ifNull(reason, '') AS reason, ifNull(actor_id, '') AS actor, ifNull(action, '') AS action, "
        f"count() AS downloads, sum(record_count) AS records FROM {EVENTS} "
        f"WHERE type = 'access' AND action IN {DOWNLOADS} AND {IN_RANGE} GROUP BY reason, actor, action "
        f"ORDER BY reason = '' DESC, downloads DESC, reason, actor"
    ),
    "incomplete": (
        f"SELECT occurred_at, service, ifNull(actor_id, '') AS actor, ifNull(source_ip, '') AS source_ip, "
        f"ifNull(action, '') AS action, subject_id, toString(event_id) AS event_id FROM {EVENTS} "
        f"WHERE type = 'access' AND ({INCOMPLETE}) AND {IN_RANGE} ORDER BY occurred_at"
    ),
    "bulk": (
        f"SELECT occurred_at, service, ifNull(actor_id, '') AS actor, message, message_template, message_args, "
        f"toString(event_id) AS event_id "
        f"FROM privaudit.violations FINAL WHERE rule = 'PA-012' AND {IN_RANGE} ORDER BY occurred_at"
    ),
    "violations": (
        "SELECT v.rule AS rule, any(v.severity) AS severity, count() AS violations, "
        "countIf(a.delivered > 0) AS alerted, countIf(a.delivered = 0) AS not_alerted "
        "FROM (SELECT rule, severity, service, coalesce(counterparty, actor_id, '') AS party, occurred_at "
        f"      FROM privaudit.violations FINAL WHERE {IN_RANGE}) AS v "
        "LEFT JOIN (SELECT rule, service, party, window_start, window_end, countIf(status = 'delivered') AS delivered "
        "           FROM privaudit.alerts FINAL GROUP BY rule, service, party, window_start, window_end) AS a "
        "ON v.rule = a.rule AND v.service = a.service AND v.party = a.party "
        "AND v.occurred_at >= a.window_start AND v.occurred_at < a.window_end "
        "GROUP BY rule ORDER BY rule"
    ),
    "members": f"SELECT uniqExact(subject_id) AS members FROM {EVENTS} WHERE {IN_RANGE}",
    "volume": (
        f"SELECT type, count() AS events, uniqExact(subject_id) AS subjects FROM {EVENTS} WHERE {IN_RANGE} "
        f"GROUP BY type ORDER BY type"
    ),
    "retention": (
        "SELECT (SELECT min(occurred_at) FROM privaudit.events) AS oldest, "
        "(SELECT count() FROM privaudit.events) AS stored, "
        "(SELECT argMax(retention_days, applied_at) FROM privaudit.schema_migrations) AS retention_days"
    ),
    "dlq": (
        "SELECT kind, count() AS records FROM privaudit.dead_letters FINAL "
        "WHERE recorded_at >= {from:DateTime64(3)} AND recorded_at < {to:DateTime64(3)} GROUP BY kind ORDER BY kind"
    ),
    # the latest run of `privaudit verify` that read the month (or the whole store)
    "verification": (
        "SELECT verified_at, ok, events, partitions, length(findings) AS finding_count, "
        "arrayStringConcat(arraySlice(findings, 1, 20), '\n') AS first_findings, key_id "
        "FROM privaudit.verifications WHERE period = '' OR has(months, formatDateTime({from:DateTime64(3)}, '%Y-%m', "
        "'Asia/Seoul')) ORDER BY verified_at DESC LIMIT 1"
    ),
    # each partition's last signed head over a range with events of the month: this paper anchors them
    "heads": (
        "SELECT kafka_topic AS topic, kafka_partition AS partition, kafka_incarnation AS life, "
        "max(last_offset) AS through_offset, lower(hex(argMax(head, last_offset))) AS chain_head, "
        "argMax(key_id, last_offset) AS signed_by, lower(hex(argMax(signature, last_offset))) AS ed25519_signature "
        "FROM privaudit.ledger FINAL WHERE max_occurred_at >= {from:DateTime64(3)} "
        "AND max_occurred_at < {to:DateTime64(3)} GROUP BY topic, partition, life ORDER BY topic, life, partition"
    ),
}


Section = dict[str, list[Any]]  # {"columns": [...], "rows": [[...], ...]}, plain JSON values


def gather(store: Statements, month: Month) -> dict[str, Section]:
    """Every section's rows for ``month``, as plain values (times as KST text): the same whether
    read here or through the process serving the store (``/api/report``)."""
    params = {"from": month.start.astimezone(UTC), "to": month.end.astimezone(UTC)}
    out: dict[str, Section] = {}
    for name, sql in SECTIONS.items():
        columns, rows = store.query(sql, params)
        if not columns:  # the embedded engine names no columns of an empty answer; the report shows them
            columns = [str(described[0]) for described in store.query(f"DESCRIBE ({sql})", params)[1]]
        out[name] = {"columns": list(columns), "rows": [[_plain(v) for v in r] for r in rows]}
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return in_kst(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _rows(data: dict[str, Section], name: str) -> list[dict[str, Any]]:
    section = data[name]
    return [dict(zip(section["columns"], r, strict=True)) for r in section["rows"]]


def figures(data: dict[str, Section], month: Month) -> dict[str, Any]:
    """The numbers the report shows, as JSON (``privaudit report --json``): for automation, and so
    that anyone can check them against SQL."""
    by_task = _rows(data, "by_task")
    downloads = _rows(data, "downloads")
    verification = _rows(data, "verification")
    violations = _rows(data, "violations")
    retention = _rows(data, "retention")[0]
    return {
        "month": str(month), "from": f"{month.start:%Y-%m-%d}", "to": f"{month.end - timedelta(days=1):%Y-%m-%d}",
        "time_zone": "Asia/Seoul",
        "events": sum(r["events"] for r in _rows(data, "volume")),
        "events_by_type": {r["type"]: r["events"] for r in _rows(data, "volume")},
        "access_records": sum(r["staff_records"] + r["system_records"] for r in by_task),
        "by_staff": sum(r["staff_records"] for r in by_task),
        "by_systems": sum(r["system_records"] for r in by_task),
        "staff": len({r["actor"] for r in _rows(data, "staff")}),
        "by_task": {r["action"]: {"staff": r["staff_records"], "systems": r["system_records"]} for r in by_task},
        "downloads": len(downloads),
        "downloads_without_reason": sum(1 for r in downloads if not r["reason"]),
        "reasons": {r["reason"]: r["downloads"] for r in _rows(data, "reasons") if r["reason"]},
        "incomplete": len(data["incomplete"]["rows"]),
        "bulk": len(data["bulk"]["rows"]),
        "violations": sum(r["violations"] for r in violations),
        "violations_alerted": sum(r["alerted"] for r in violations),
        "violations_by_rule": {r["rule"]: r["violations"] for r in violations},
        "dead_letters": {k: n for k, n in data["dlq"]["rows"]},
        "retention_days": int(retention["retention_days"] or MIN_RETENTION_DAYS),
        "oldest_record": retention["oldest"] if retention["stored"] else None,
        "verified": (None if not verification else
                     {"at": verification[0]["verified_at"], "whole": bool(verification[0]["ok"]),
                      "findings": verification[0]["finding_count"]}),
    }


def render(data: dict[str, Section], month: Month, policy: Policy | None = None,
           now: datetime | None = None, empty: bool = False, lang: str = DEFAULT_LANGUAGE) -> str:
    """The report as HTML in ``lang`` (Korean by default, codes alongside); ``empty``: the store
    holds no events for the month, said first."""
    _ = translator(lang)
    now = now or datetime.now(UTC)
    fig = figures(data, month)
    words = names(policy, lang)

    def code(field: str, value: Any) -> str:
        """A code as a person reads it, with the code alongside: 다운로드 (DOWNLOAD)."""
        text = str(value or "")
        label = words.get(field, {}).get(text, "")
        if not label or label == text:
            return html.escape(text)
        return f"{html.escape(label)} <code>{html.escape(text)}</code>"

    fields = {"action": "action", "purpose": "purpose", "type": "type", "rule": "rule", "severity": "severity",
              "kind": "kind"}

    def table(name: str, empty_text: str, limit: int | None = None, rows: list[list[Any]] | None = None,
              columns: list[str] | None = None) -> str:
        cols = columns or data[name]["columns"]
        rows = data[name]["rows"] if rows is None else rows
        if not rows:
            return f'<p class="empty">{html.escape(empty_text)}</p>'
        shown = rows if limit is None else rows[:limit]
        head = "".join(f"<th>{html.escape(_(COLUMNS.get(c, c)))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_cell(c, v, code, fields)}</td>" for c, v in zip(cols, r, strict=True))
                       + "</tr>" for r in shown)
        more = (f'<p class="note">{html.escape(_(MORE).format(n=f"{len(rows) - len(shown):,}"))}</p>'
                if len(shown) < len(rows) else "")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"

    retention = _retention(fig, now, _)
    dead_letters = (", ".join(f"{code('kind', k)}: {n:,}" for k, n in fig["dead_letters"].items())
                    or html.escape(_("none")))
    summary = [
        _("{n} events of {members} members").format(n=f"{fig['events']:,}",
                                                    members=f"{_subjects(data):,}"),
        _("{n} access records: {staff} by {people} staff, {systems} by systems").format(
            n=f"{fig['access_records']:,}", staff=f"{fig['by_staff']:,}", people=f"{fig['staff']:,}",
            systems=f"{fig['by_systems']:,}"),
        _("{n} downloads or exports, {m} without a reason").format(n=f"{fig['downloads']:,}",
                                                                   m=f"{fig['downloads_without_reason']:,}"),
        _("{n} incomplete access records").format(n=f"{fig['incomplete']:,}"),
        _("{n} bulk accesses").format(n=f"{fig['bulk']:,}"),
        _("{n} violations, {m} of them in an alert delivered to on-call").format(
            n=f"{fig['violations']:,}", m=f"{fig['violations_alerted']:,}"),
    ]
    bulk = {"columns": list(data["bulk"]["columns"]), "rows": [list(r) for r in data["bulk"]["rows"]]}
    bulk["columns"] = said(bulk["columns"], bulk["rows"], lang, words)
    d_rows = data["downloads"]["rows"]
    reason_at = data["downloads"]["columns"].index("reason")
    no_reason = [r for r in d_rows if not r[reason_at]]
    viol_cols = ["rule", "title", "law", "severity", "violations", "alerted", "not_alerted"]
    viol_rows = [[r["rule"], rule_text(r["rule"], lang)["title"], rule_text(r["rule"], lang)["law"], r["severity"],
                  r["violations"], r["alerted"], r["not_alerted"]] for r in _rows(data, "violations")]
    reasons = data["reasons"]
    reason_rows = [[*r, ""] for r in reasons["rows"]]
    policy_line = html.escape(policy.policy_id) if policy is not None else ""
    empty_note = (f'<p class="empty-month"><strong>{html.escape(_(EMPTY_TITLE))}'
                  f"</strong> {html.escape(_(EMPTY_NOTE))}</p>") if empty else ""

    def h(level: int, text: str, count: int | None = None) -> str:
        suffix = f" ({count:,})" if count is not None else ""
        return f"<h{level}>{html.escape(text)}{suffix}</h{level}>"

    def note(text: str) -> str:
        return f'<p class="note">{html.escape(text)}</p>'

    title = _("Monthly review of access records")
    period_word, policy_word, generated_word = _("Period"), _("policy"), _("generated")
    dead_word = _("Records that could not be audited this month (dead letters):")
    sign = (_("Reviewed by"), _("Date"), _("Signature"))
    parts = [
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)} {month}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)} · {month}<br><small>{html.escape(_(SUBTITLE))}</small></h1>",
        f'<p class="meta">{html.escape(period_word)}: {month.start:%Y-%m-%d} ~ '
        f"{(month.end - timedelta(days=1)):%Y-%m-%d} (KST) · {html.escape(policy_word)} {policy_line} · "
        f"{html.escape(generated_word)} {kst_text(now, seconds=False)} · privaudit {__version__} · "
        f"{html.escape(_(BASIS))}</p>",
        empty_note,
        h(2, _("Summary")), "<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in summary) + "</ul>",
        table("volume", _("No events in this month.")),
        h(2, "1. " + _("Access records by task (수행업무)")), note(_(TASK_NOTE)),
        table("by_task", _("No access records in this month.")),
        h(3, _("Staff, by person, task and purpose")),
        table("staff", _("No access by staff in this month."), 400),
        h(3, _("Systems, by account, task and purpose")),
        table("systems", _("No access by systems in this month."), 100),
        h(2, "2. " + _("Downloads and exports")),
        h(3, _("Reasons given, to confirm"), len(reasons["rows"])), note(_(REASONS_NOTE)),
        table("reasons", _("No downloads or exports in this month."), rows=reason_rows,
              columns=[*reasons["columns"], "confirmed"]),
        h(3, _("Without a reason"), len(no_reason)),
        table("downloads", _("Every download and export had a reason."), rows=no_reason),
        h(3, _("All, with their reasons"), len(d_rows)),
        table("downloads", _("No downloads or exports in this month."), 500),
        h(2, "3. " + _("Incomplete access records"), fig["incomplete"]),
        table("incomplete", _("Every access record names its actor and source address."), 500),
        h(2, "4. " + _("Bulk accesses"), fig["bulk"]),
        table("bulk", _("No bulk access in this month."), 500, rows=bulk["rows"], columns=bulk["columns"]),
        h(2, "5. " + _("Violations found and alerts")),
        table("violations", _("No violations in this month."), rows=viol_rows, columns=viol_cols),
        note(_(ALERTED_NOTE)),
        h(2, "6. " + _("Retention of the audit log")), f"<p>{html.escape(retention)}</p>",
        f"<p>{html.escape(dead_word)} {dead_letters}.</p>",
        h(2, "7. " + _("Integrity of the record")), f"<p>{html.escape(_integrity(data, _))}</p>",
        f'<p class="note">{html.escape(_(HEADS_NOTE))} <code>privaudit verify --public-key FILE</code></p>',
        table("heads", _("No signed heads for this month (loaded before the ledger existed?).")),
        f'<div class="sign"><p>{html.escape(sign[0])}: ____________________ &nbsp; '
        f"{html.escape(sign[1])}: ____________ &nbsp; {html.escape(sign[2])}: ____________</p></div>",
        "</body></html>\n",
    ]
    return "\n".join(parts)


MORE = N_("and {n} more")
EMPTY_TITLE = N_("The store holds no events for this month:")
SUBTITLE = N_("Inspection of the access records of the personal data processing system")
BASIS = N_("basis: Safety Measures standard Art. 8 (keeping and inspecting access records)")
TASK_NOTE = N_("What was done (view, update, delete, download...), by people (staff, and processors' staff) "
               "apart from systems (automatic processing by service accounts).")
REASONS_NOTE = N_("Each reason given for a download or export, with who gave it; the reviewer confirms each "
                  "(the last column) or follows it up.")
ALERTED_NOTE = N_("Alerted: the violation belongs to an alert group delivered to at least one sink "
                  "(privaudit.alerts). Not alerted: no route matched it, or no dispatcher ran.")
HEADS_NOTE = N_("Each partition's last chain head signed over this month's events (Ed25519; docs/evidence.md). "
                "Kept on this page, they let anyone holding the public key check later that nothing before "
                "them was changed:")
EMPTY_NOTE = N_("this report reviews nothing. Every \"no\" below means that nothing was read, not that nothing "
                "was wrong. Check that the report was made from the store the services write to.")


def _subjects(data: dict[str, Section]) -> int:
    return int(data["members"]["rows"][0][0]) if data["members"]["rows"] else 0


def _retention(fig: dict[str, Any], now: datetime, _: Callable[[str], str]) -> str:
    days = fig["retention_days"]
    oldest = fig["oldest_record"]
    if oldest is None:
        return _("No records are stored yet; the store's TTL is {days} days (at least {min}).").format(
            days=days, min=MIN_RETENTION_DAYS)
    at = datetime.strptime(oldest, "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
    if at <= now - timedelta(days=MIN_RETENTION_DAYS):
        return _("Records older than two years are kept: the oldest stored record is from {day} (KST); the "
                 "store's TTL is {days} days (at least {min}).").format(day=oldest[:10], days=days,
                                                                        min=MIN_RETENTION_DAYS)
    return _("Kept since the start of logging: the oldest stored record is from {day} (KST, less than two years "
             "ago), and the store's TTL of {days} days keeps every record at least {min} days.").format(
        day=oldest[:10], days=days, min=MIN_RETENTION_DAYS)


def _integrity(data: dict[str, Section], _: Callable[[str], str]) -> str:
    rows = _rows(data, "verification")
    if not rows:
        return _("Not verified: no run of privaudit verify read this month.")
    r = rows[0]
    when = f"{r['verified_at'][:16]} KST"
    if r["ok"]:
        return _("Verified {when}: {events} events in {partitions} partition(s) match their signed chain heads "
                 "(key {key}); no finding.").format(when=when, events=f"{r['events']:,}",
                                                    partitions=r["partitions"], key=r["key_id"])
    return _("Verified {when}: {n} finding(s) (key {key}): {first}").format(
        when=when, n=f"{r['finding_count']:,}", key=r["key_id"], first=r["first_findings"])


def _cell(column: str, value: Any, code: Callable[[str, Any], str], fields: dict[str, str]) -> str:
    if column in fields and value:
        return code(fields[column], value)
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value if value is not None else ""))


_CSS = """
body { font: 12px/1.45 "Noto Sans KR", system-ui, sans-serif; color: #111; margin: 24px; }
h1 { font-size: 20px; } h1 small { font-size: 14px; color: #555; font-weight: normal; }
h2 { font-size: 15px; border-bottom: 1px solid #ccc; padding-bottom: 2px; margin-top: 22px; }
h3 { font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; font-size: 11px; }
th { background: #f3f4f6; }
.meta, .note { color: #555; } .empty { color: #555; font-style: italic; }
.sign { margin-top: 30px; }
.empty-month { border: 2px solid #b91c1c; color: #7f1d1d; padding: 8px 10px; font-size: 13px; }
td { word-break: break-all; }
@page { size: A4; margin: 14mm; }
@media print { body { margin: 0; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""
