"""``privaudit report --month YYYY-MM``: the monthly inspection of access records.

The Safety Measures standard (개인정보의 안전성 확보조치 기준, Art. 8) asks a controller to keep
access records (who, when, from where, what was processed, for whom) for at least two years for
a service like this one, and to inspect them at least monthly, looking in particular at downloads
and at their reasons. This report is that inspection, for one calendar month (KST), from what the
pipeline stored:

1. volume of access records by actor and task (purpose);
2. every download or export with its reason, and those without one;
3. incomplete records (no actor or no source address);
4. bulk accesses (PA-012);
5. the violations found, and whether on-call was alerted (a delivered alert group covering them);
6. the audit log's own retention.

One printable HTML page, self-contained (no external assets).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from privaudit import __version__
from privaudit.checker.rules import RULES
from privaudit.errors import ConfigError
from privaudit.policy import Policy
from privaudit.settings import MIN_RETENTION_DAYS
from privaudit.store import Statements, as_utc

from .panels import DOWNLOADS, EVENTS, IN_RANGE, INCOMPLETE

KST = timezone(timedelta(hours=9), "KST")


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


SECTIONS: dict[str, str] = {
    "by_actor": (
        f"SELECT ifNull(actor_id, '(none)') AS actor, ifNull(actor_type, '') AS actor_type, "
        f"ifNull(purpose, '') AS task, "
        f"count() AS records, uniqExact(subject_id) AS subjects, sum(record_count) AS rows_touched "
        f"FROM {EVENTS} WHERE type = 'access' AND {IN_RANGE} GROUP BY actor, actor_type, task "
        f"ORDER BY records DESC, actor, task"
    ),
    "downloads": (
        f"SELECT occurred_at, service, ifNull(actor_id, '') AS actor, ifNull(action, '') AS action, "
        f"ifNull(purpose, '') AS purpose, "
        f"record_count, ifNull(reason, '') AS reason, subject_id, toString(event_id) AS event_id FROM {EVENTS} "
        f"WHERE type = 'access' AND action IN {DOWNLOADS} AND {IN_RANGE} ORDER BY occurred_at"
    ),
    "incomplete": (
        f"SELECT occurred_at, service, ifNull(actor_id, '') AS actor, ifNull(source_ip, '') AS source_ip, "
        f"ifNull(action, '') AS action, subject_id, toString(event_id) AS event_id FROM {EVENTS} "
        f"WHERE type = 'access' AND ({INCOMPLETE}) AND {IN_RANGE} ORDER BY occurred_at"
    ),
    "bulk": (
        f"SELECT occurred_at, service, ifNull(actor_id, '') AS actor, message, toString(event_id) AS event_id "
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


def gather(store: Statements, month: Month) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    params = {"from": month.start.astimezone(UTC), "to": month.end.astimezone(UTC)}
    return {name: store.query(sql, params) for name, sql in SECTIONS.items()}


def render(data: dict[str, tuple[list[str], list[tuple[Any, ...]]]], month: Month, policy: Policy | None = None,
           now: datetime | None = None, empty: bool = False) -> str:
    """The report as HTML; ``empty``: the store holds no events for the month, said first."""
    now = now or datetime.now(UTC)
    volume = dict((t, n) for t, n, _ in data["volume"][1])
    access = volume.get("access", 0)
    downloads = data["downloads"][1]
    d_cols = data["downloads"][0]
    no_reason = [r for r in downloads if not r[d_cols.index("reason")]]
    incomplete = data["incomplete"][1]
    bulk = data["bulk"][1]
    viol = data["violations"][1]
    total_v = sum(r[2] for r in viol)
    alerted = sum(r[3] for r in viol)
    oldest, stored, retention_days = data["retention"][1][0]
    retention_days = int(retention_days or MIN_RETENTION_DAYS)
    two_years_ago = now - timedelta(days=MIN_RETENTION_DAYS)
    if stored and as_utc(oldest) <= two_years_ago:
        retention = (f"Records older than two years are kept: the oldest stored record is from "
                     f"{as_utc(oldest):%Y-%m-%d}; the store's TTL is {retention_days} days "
                     f"(at least {MIN_RETENTION_DAYS}).")
    elif stored:
        retention = (f"Kept since the start of logging: the oldest stored record is from {as_utc(oldest):%Y-%m-%d} "
                     f"(less than two years ago), and the store's TTL of {retention_days} days keeps every record "
                     f"at least {MIN_RETENTION_DAYS} days.")
    else:
        retention = (f"No records are stored yet; the store's TTL is {retention_days} days "
                     f"(at least {MIN_RETENTION_DAYS}).")
    dead_letters = ", ".join(f"{k}: {n:,}" for k, n in data["dlq"][1]) or "none"
    integrity = _integrity(data["verification"][1])

    def table(cols: list[str], rows: list[tuple[Any, ...]], empty: str, limit: int | None = None) -> str:
        if not rows:
            return f'<p class="empty">{html.escape(empty)}</p>'
        shown = rows if limit is None else rows[:limit]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in shown)
        more = f'<p class="note">and {len(rows) - len(shown):,} more</p>' if len(shown) < len(rows) else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"

    findings = [
        f"{access:,} access records from {len({r[0] for r in data['by_actor'][1]}):,} actors",
        f"{len(downloads):,} downloads or exports, {len(no_reason):,} without a reason",
        f"{len(incomplete):,} incomplete access records",
        f"{len(bulk):,} bulk accesses",
        f"{total_v:,} violations, {alerted:,} of them in an alert delivered to on-call",
    ]
    viol_cols = ["rule", "title", "severity", "violations", "alerted", "not alerted"]
    viol_rows = [(r[0], RULES[r[0]].title if r[0] in RULES else "", r[1], r[2], r[3], r[4]) for r in viol]
    policy_line = html.escape(policy.policy_id) if policy is not None else ""
    return f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8">
<title>접속기록 점검 보고서 {month} · Monthly review of access records</title>
<style>{_CSS}</style></head><body>
<h1>개인정보처리시스템 접속기록 점검 보고서<br><small>Monthly review of access records · {month}</small></h1>
<p class="meta">Period: {month.start:%Y-%m-%d} to {(month.end - timedelta(days=1)):%Y-%m-%d} (KST) ·
policy {policy_line} · generated {now:%Y-%m-%d %H:%M} UTC by privaudit {__version__} ·
basis: 개인정보의 안전성 확보조치 기준 제8조 (접속기록의 보관 및 점검)</p>
{_EMPTY if empty else ""}<h2>Summary</h2><ul>{''.join(f'<li>{html.escape(f)}</li>' for f in findings)}</ul>
{table(['type', 'events', 'subjects'], data['volume'][1], 'No events in this month.')}
<h2>1. Access records by actor and task</h2>
{table(data['by_actor'][0], data['by_actor'][1], 'No access records in this month.', 300)}
<h2>2. Downloads and exports</h2>
<h3>Without a reason ({len(no_reason):,})</h3>
{table(d_cols, no_reason, 'Every download and export had a reason.')}
<h3>All, with their reasons ({len(downloads):,})</h3>
{table(d_cols, downloads, 'No downloads or exports in this month.', 500)}
<h2>3. Incomplete access records ({len(incomplete):,})</h2>
{table(data['incomplete'][0], incomplete, 'Every access record names its actor and source address.', 500)}
<h2>4. Bulk accesses ({len(bulk):,})</h2>
{table(data['bulk'][0], bulk, 'No bulk access in this month.', 500)}
<h2>5. Violations found and alerts</h2>
{table(viol_cols, viol_rows, 'No violations in this month.')}
<p class="note">Alerted: the violation belongs to an alert group delivered to at least one sink
(privaudit.alerts). Not alerted: no route matched it, or no dispatcher ran.</p>
<h2>6. Retention of the audit log</h2><p>{html.escape(retention)}</p>
<p>Records that could not be audited this month (dead letters): {dead_letters}.</p>
<h2>7. 기록의 무결성 · Integrity of the record</h2><p>{html.escape(integrity)}</p>
<p class="note">Each partition's last chain head signed over this month's events (Ed25519; docs/evidence.md).
Kept on this page, they let anyone holding the public key check later that nothing before them was
changed: <code>privaudit verify --public-key FILE</code>.</p>
{table(data['heads'][0], data['heads'][1], 'No signed heads for this month (loaded before the ledger existed?).')}
<div class="sign"><p>Reviewed by: ____________________ &nbsp; Date: ____________ &nbsp;
Signature: ____________</p></div>
</body></html>
"""


_EMPTY = ('<p class="empty-month"><strong>이 달에 저장된 기록이 없습니다. The store holds no events for this '
          "month:</strong> this report reviews nothing. Every \"no\" below means that nothing was read, not that "
          "nothing was wrong. Check that the report was made from the store the services write to.</p>")


def _integrity(rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return "Not verified: no run of privaudit verify read this month."
    at, ok, events, partitions, findings, first, key_id = rows[0]
    when = f"{as_utc(at).astimezone(KST):%Y-%m-%d %H:%M} KST"
    if ok:
        return (f"Verified {when}: {events:,} events in {partitions} partition(s) match their signed chain heads "
                f"(key {key_id}); no finding.")
    return f"Verified {when}: {findings:,} finding(s) (key {key_id}): {first}"


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return html.escape(f"{as_utc(value).astimezone(KST):%Y-%m-%d %H:%M:%S} KST")
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


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
