"""The dashboard's panels: one SQL per panel, shared by the built-in dashboard, the Grafana
dashboards (``dashboards/grafana/*.json``, generated from here by ``python -m
privaudit.dashboards.grafana``) and the monthly report.

Filters reach SQL only as ClickHouse query parameters: ``{from:DateTime64(3)}``,
``{to:DateTime64(3)}``, ``{service:String}``, ``{rule:String}``, ``{severity:String}`` (an empty
string means "all"), and ``{bucket:UInt32}``, the width in seconds of a time series' columns (an
hour for a range of up to four days, else a day). Time filters are on event time
(``occurred_at``), except where a panel says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from privaudit.checker.checker import BULK_ACTIONS

Kind = Literal["stacked", "bars", "table", "stat"]

EVENTS = "privaudit.events FINAL"
VIOLATIONS = "privaudit.violations FINAL"
IN_RANGE = "occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}"
_SERVICE = "({service:String} = '' OR service = {service:String})"
F_EVENTS = f"{IN_RANGE} AND {_SERVICE}"
F_VIOLATIONS = (f"{IN_RANGE} AND {_SERVICE} AND ({{rule:String}} = '' OR rule = {{rule:String}}) "
                "AND ({severity:String} = '' OR severity = {severity:String})")
#: access actions that take personal data out of the system: those PA-011 asks a reason of
DOWNLOADS = "(" + ", ".join(f"'{action}'" for action in sorted(BULK_ACTIONS)) + ")"
#: an access record that does not say who (actor_id) or from where (source_ip), as PA-010 checks
INCOMPLETE = "ifNull(actor_id, '') = '' OR ifNull(source_ip, '') = ''"


def _over_time(series: str, source: str, where: str) -> str:
    """A stacked time series: ``(day, series, value)`` in columns of ``{bucket}`` seconds."""
    return (f"SELECT toStartOfInterval(occurred_at, INTERVAL {{bucket:UInt32}} SECOND) AS day, {series} AS series, "
            f"count() AS value FROM {source} WHERE {where} GROUP BY day, series ORDER BY day, series")


def _events_by(label: str, where: str) -> str:
    """Bars of events by ``label``, with their distinct subjects, largest first."""
    return (f"SELECT {label} AS label, count() AS value, uniqExact(subject_id) AS subjects FROM {EVENTS} "
            f"WHERE {where} GROUP BY label ORDER BY value DESC")


@dataclass(frozen=True)
class Panel:
    id: str
    section: str
    title: str
    kind: Kind
    sql: str
    note: str = ""
    #: a column whose values are purpose codes: shown with the policy's Korean text
    purpose_column: str | None = None
    #: may legitimately be empty on demo data (nothing of the kind happened)
    may_be_empty: bool = False
    #: the panel's rows link to the event (column ``event_id``) or to the subject (``subject_id``)
    links: bool = False


PANELS: tuple[Panel, ...] = (
    # -- overview ------------------------------------------------------------------------------
    Panel("totals", "Overview", "Totals", "stat",
          f"SELECT (SELECT count() FROM {EVENTS} WHERE {F_EVENTS}) AS events, "
          f"(SELECT uniqExact(subject_id) FROM {EVENTS} WHERE {F_EVENTS}) AS subjects, "
          f"(SELECT count() FROM {VIOLATIONS} WHERE {F_VIOLATIONS}) AS violations, "
          f"(SELECT countIf(severity = 'critical') FROM {VIOLATIONS} WHERE {F_VIOLATIONS}) AS critical"),
    Panel("events_by_day", "Overview", "Events over time, by type", "stacked",
          _over_time("type", EVENTS, F_EVENTS)),
    Panel("violations_by_day", "Overview", "Violations over time, by rule", "stacked",
          _over_time("rule", VIOLATIONS, F_VIOLATIONS)),
    Panel("violations_by_rule", "Overview", "Violations by rule and severity", "bars",
          f"SELECT rule AS label, any(severity) AS rule_severity, count() AS value, uniqExact(subject_id) AS subjects "
          f"FROM {VIOLATIONS} WHERE {F_VIOLATIONS} GROUP BY label ORDER BY label"),
    # -- use of personal data ------------------------------------------------------------------
    Panel("use_by_purpose", "Use of personal data", "Accesses by purpose", "bars",
          _events_by("purpose", f"type = 'access' AND {F_EVENTS}"), purpose_column="label"),
    Panel("use_by_item", "Use of personal data", "Processing by item", "bars",
          _events_by("arrayJoin(data_items)", f"type IN ('access', 'share', 'transfer') AND {F_EVENTS}")),
    Panel("use_by_service", "Use of personal data", "Events by service", "bars",
          _events_by("service", F_EVENTS)),
    Panel("use_by_action", "Use of personal data", "Accesses by action", "bars",
          _events_by("ifNull(action, '')", f"type = 'access' AND {F_EVENTS}")),
    # -- provisions and transfers --------------------------------------------------------------
    Panel("shares_by_recipient", "Provisions and transfers", "Third-party provisions by recipient and basis", "table",
          f"SELECT ifNull(recipient_id, '') AS recipient, ifNull(legal_basis, '') AS basis, "
          f"ifNull(country, '') AS country, "
          f"count() AS provisions, uniqExact(subject_id) AS subjects FROM {EVENTS} "
          f"WHERE type = 'share' AND {F_EVENTS} GROUP BY recipient, basis, country ORDER BY provisions DESC"),
    Panel("transfers_by_processor", "Provisions and transfers", "Transfers to processors by country", "table",
          f"SELECT ifNull(processor_id, '') AS processor, ifNull(country, '') AS country, ifNull(task, '') AS task, "
          f"count() AS transfers, uniqExact(subject_id) AS subjects FROM {EVENTS} "
          f"WHERE type = 'transfer' AND {F_EVENTS} GROUP BY processor, country, task ORDER BY transfers DESC"),
    # -- access records (Safety Measures Art. 8) -----------------------------------------------
    Panel("access_completeness", "Access records", "Completeness of access records", "stat",
          f"SELECT count() AS access_records, "
          f"countIf({INCOMPLETE}) AS incomplete, "
          f"round(if(access_records = 0, 1, 1 - incomplete / access_records), 4) AS completeness "
          f"FROM {EVENTS} WHERE type = 'access' AND {F_EVENTS}",
          note="complete: who (actor_id) and from where (source_ip), as PA-010 checks"),
    Panel("downloads", "Access records", "Downloads and exports, with and without a reason", "bars",
          f"SELECT ifNull(action, '') AS label, countIf(ifNull(reason, '') != '') AS with_reason, "
          f"countIf(ifNull(reason, '') = '') AS value, sum(record_count) AS records FROM {EVENTS} "
          f"WHERE type = 'access' AND action IN {DOWNLOADS} AND {F_EVENTS} GROUP BY label ORDER BY label",
          note="value: without a reason"),
    Panel("download_list", "Access records", "Latest downloads and exports", "table",
          f"SELECT occurred_at, service, ifNull(actor_id, '') AS actor_id, ifNull(action, '') AS action, "
          f"ifNull(purpose, '') AS purpose, record_count, ifNull(reason, '') AS reason, subject_id, "
          f"toString(event_id) AS event_id "
          f"FROM {EVENTS} WHERE type = 'access' AND action IN {DOWNLOADS} AND {F_EVENTS} "
          f"ORDER BY occurred_at DESC LIMIT 200", links=True),
    Panel("top_actors", "Access records", "Top actors by distinct subjects", "table",
          f"SELECT ifNull(actor_id, '(none)') AS actor_id, any(actor_type) AS actor_type, "
          f"uniqExact(subject_id) AS subjects, count() AS accesses, sum(record_count) AS records FROM {EVENTS} "
          f"WHERE type = 'access' AND {F_EVENTS} GROUP BY actor_id ORDER BY subjects DESC, accesses DESC LIMIT 20"),
    # -- consents and membership -------------------------------------------------------------
    Panel("consents_by_day", "Consents and withdrawals", "Consents granted and withdrawn", "stacked",
          _over_time("if(granted, 'granted', 'withdrawn')", EVENTS, f"type = 'consent' AND {F_EVENTS}")),
    Panel("membership_by_day", "Consents and withdrawals", "Sign-ups, withdrawals and contract ends", "stacked",
          _over_time("ifNull(change, '')", EVENTS, f"type = 'membership' AND {F_EVENTS}")),
    # -- the pipeline itself ------------------------------------------------------------------
    Panel("dlq", "Pipeline", "Records sent to the dead-letter topic", "table",
          "SELECT toDate(recorded_at) AS day, kind, count() AS records, any(reason) AS example_reason "
          "FROM privaudit.dead_letters FINAL GROUP BY day, kind ORDER BY day DESC, kind",
          note="by the day they were consumed (not filtered by event time)", may_be_empty=True),
    Panel("lag", "Pipeline", "Consumer lag per partition (at the last batch)", "table",
          "SELECT kafka_partition AS partition, argMax(next_offset, updated_at) AS loaded_to, "
          "argMax(high_watermark, updated_at) AS end_seen, greatest(end_seen, loaded_to) - loaded_to AS lag, "
          "max(updated_at) AS as_of FROM privaudit.progress GROUP BY partition ORDER BY partition",
          note="as the consumer saw it at its last batch; a stopped consumer's lag is not visible here"),
    Panel("verification", "Pipeline", "Verification of the record: the latest runs of privaudit verify", "table",
          "SELECT verified_at, if(ok, 'whole', 'FINDINGS') AS result, events, partitions, "
          "length(findings) AS finding_count, arrayStringConcat(arraySlice(findings, 1, 5), ' | ') AS first_findings, "
          "key_id FROM privaudit.verifications ORDER BY verified_at DESC LIMIT 10",
          note="not filtered; a finding names the row changed, deleted or inserted (docs/evidence.md)"),
    Panel("emitters", "Pipeline", "Emitters: the sequence numbers seen", "table",
          "SELECT emitter, any(service) AS service, min(first_seq) AS first_seq, max(last_seq) AS last_seq, "
          "sum(records) AS records, max(max_occurred_at) AS last_event FROM privaudit.emitter_seqs FINAL "
          "WHERE emitter != '' GROUP BY emitter ORDER BY last_event DESC LIMIT 50",
          note="each AuditEmitter numbers its records; a number that never arrives is a gap (below)"),
    Panel("emitter_gaps", "Pipeline", "Emitter gaps: events emitted that never reached Kafka", "table",
          "SELECT verified_at, arrayJoin(arrayFilter(x -> startsWith(x, 'gap:'), findings)) AS gap "
          "FROM privaudit.verifications WHERE verified_at = (SELECT max(verified_at) FROM privaudit.verifications)",
          note="as the latest run of privaudit verify found them (PA-018); empty when there are none",
          may_be_empty=True),
    # -- violations and alerts -------------------------------------------------------------------
    Panel("violation_list", "Violations", "Latest violations", "table",
          f"SELECT occurred_at, rule, severity, service, subject_id, ifNull(actor_id, '') AS actor_id, "
          f"ifNull(counterparty, '') AS counterparty, message, toString(event_id) AS event_id FROM {VIOLATIONS} "
          f"WHERE {F_VIOLATIONS} ORDER BY occurred_at DESC LIMIT 200", links=True),
    Panel("alerts", "Violations", "Alerts sent to on-call", "table",
          "SELECT rule, service, party, window_start, count, sink, status, attempts, notified_at "
          "FROM privaudit.alerts FINAL WHERE window_end > {from:DateTime64(3)} AND window_start < {to:DateTime64(3)} "
          "AND ({service:String} = '' OR service = {service:String}) AND ({rule:String} = '' OR rule = {rule:String}) "
          "AND ({severity:String} = '' OR severity = {severity:String}) ORDER BY window_start DESC LIMIT 200",
          note="empty unless the alert dispatcher runs", may_be_empty=True),
)

BY_ID: dict[str, Panel] = {p.id: p for p in PANELS}

EVENT_SQL = (
    "SELECT * EXCEPT (data_items, purposes), arrayStringConcat(data_items, ', ') AS data_items, "
    "arrayStringConcat(purposes, ', ') AS purposes FROM privaudit.events FINAL WHERE event_id = {id:UUID} LIMIT 1"
)
EVENT_VIOLATIONS_SQL = (
    "SELECT rule, severity, message, policy_version, detected_at FROM privaudit.violations FINAL "
    "WHERE event_id = {id:UUID} ORDER BY rule"
)
SUBJECT_SQL = (
    "SELECT e.occurred_at AS occurred_at, e.type AS type, e.service AS service, ifNull(e.action, '') AS action, "
    "ifNull(e.purpose, '') AS purpose, coalesce(e.recipient_id, e.processor_id, '') AS counterparty, "
    "ifNull(e.actor_id, '') AS actor_id, "
    "multiIf(e.type = 'consent', if(e.granted, 'granted ', 'withdrawn ') || ifNull(e.target, ''), "
    "e.type = 'membership', ifNull(e.change, ''), arrayStringConcat(e.data_items, ', ')) AS detail, "
    "toString(e.event_id) AS event_id, arrayStringConcat(v.rules, ', ') AS violations "
    "FROM privaudit.events AS e FINAL LEFT JOIN (SELECT event_id, groupArray(rule) AS rules "
    "FROM privaudit.violations FINAL WHERE subject_id = {subject:String} GROUP BY event_id) AS v "
    "ON v.event_id = e.event_id "
    "WHERE e.subject_id = {subject:String} ORDER BY e.occurred_at LIMIT 1000"
)
FILTERS_SQL = (
    "SELECT min(occurred_at) AS first, max(occurred_at) AS last, groupUniqArray(service) AS services "
    "FROM privaudit.events"
)
