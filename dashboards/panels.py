"""The dashboard's panels: one SQL per panel, shared by the built-in dashboard, the Grafana
dashboards (``dashboards/grafana/*.json``, generated from here by ``python -m
privaudit.dashboards.grafana``) and the monthly report.

Filters reach SQL only as ClickHouse query parameters: ``{from:DateTime64(3)}``,
``{to:DateTime64(3)}``, ``{service:String}``, ``{rule:String}``, ``{severity:String}`` (an empty
string means "all"), ``{who:String}`` (``all``: systems too, else people only), ``{actor:String}``
and ``{reason:String}`` (``with``/``without``) for the downloads, and ``{bucket:UInt32}``, the
width in seconds of a time series' columns (an hour for a range of up to four days, else a day).
Time filters are on event time (``occurred_at``), except where a panel says. Times are stored in
UTC; the filters' days are KST days and the series' columns start at KST hours and days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from privaudit.checker.checker import BULK_ACTIONS
from privaudit.i18n import N_

Kind = Literal["stacked", "bars", "table", "stat"]

EVENTS = "privaudit.events FINAL"
VIOLATIONS = "privaudit.violations FINAL"
IN_RANGE = "occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}"
_SERVICE = "({service:String} = '' OR service = {service:String})"
F_EVENTS = f"{IN_RANGE} AND {_SERVICE}"
F_VIOLATIONS = (f"{IN_RANGE} AND {_SERVICE} AND ({{rule:String}} = '' OR rule = {{rule:String}}) "
                "AND ({severity:String} = '' OR severity = {severity:String})")
F_VIOLATIONS_ANY_RULE = f"{IN_RANGE} AND {_SERVICE}"
#: the distinct items of a group of events, sorted: "DEVICE_ID, PHONE"
ITEMS = "arrayStringConcat(arraySort(groupUniqArrayArray(data_items)), ', ')"
#: access actions that take personal data out of the system: those PA-011 asks a reason of
DOWNLOADS = "(" + ", ".join(f"'{action}'" for action in sorted(BULK_ACTIONS)) + ")"
#: an access record that does not say who (actor_id) or from where (source_ip), as PA-010 checks
INCOMPLETE = "ifNull(actor_id, '') = '' OR ifNull(source_ip, '') = ''"


def _over_time(series: str, source: str, where: str) -> str:
    """A stacked time series: ``(day, series, value)`` in columns of ``{bucket}`` seconds, cut at
    KST's hours and days (shifted by its fixed nine hours: the columns of a day start at 00:00 KST)."""
    return (f"SELECT toStartOfInterval(occurred_at + INTERVAL 9 HOUR, INTERVAL {{bucket:UInt32}} SECOND) "
            f"- INTERVAL 9 HOUR AS day, {series} AS series, "
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
    Panel("totals", N_("Overview"), N_("Totals"), "stat",
          f"SELECT (SELECT count() FROM {EVENTS} WHERE {F_EVENTS}) AS events, "
          f"(SELECT uniqExact(subject_id) FROM {EVENTS} WHERE {F_EVENTS}) AS subjects, "
          f"(SELECT count() FROM {VIOLATIONS} WHERE {F_VIOLATIONS}) AS violations, "
          f"(SELECT countIf(severity = 'critical') FROM {VIOLATIONS} WHERE {F_VIOLATIONS}) AS critical"),
    Panel("events_by_day", N_("Overview"), N_("Events over time, by type"), "stacked",
          _over_time("type", EVENTS, F_EVENTS)),
    Panel("violations_by_day", N_("Overview"), N_("Violations over time, by rule"), "stacked",
          _over_time("rule", VIOLATIONS, F_VIOLATIONS)),
    Panel("violations_by_rule", N_("Overview"), N_("Violations by rule and severity"), "bars",
          f"SELECT rule AS label, any(severity) AS rule_severity, count() AS value, uniqExact(subject_id) AS subjects "
          f"FROM {VIOLATIONS} WHERE {F_VIOLATIONS} GROUP BY label ORDER BY label"),
    # -- use of personal data ------------------------------------------------------------------
    Panel("use_by_purpose", N_("Use of personal data"), N_("Accesses by purpose"), "bars",
          _events_by("purpose", f"type = 'access' AND {F_EVENTS}"), purpose_column="label"),
    Panel("use_by_item", N_("Use of personal data"), N_("Processing by item"), "bars",
          _events_by("arrayJoin(data_items)", f"type IN ('access', 'share', 'transfer') AND {F_EVENTS}")),
    Panel("use_by_service", N_("Use of personal data"), N_("Events by service"), "bars",
          _events_by("service", F_EVENTS)),
    Panel("use_by_action", N_("Use of personal data"), N_("Accesses by action"), "bars",
          _events_by("ifNull(action, '')", f"type = 'access' AND {F_EVENTS}")),
    # -- provisions and transfers --------------------------------------------------------------
    Panel("shares_by_recipient", N_("Provisions and transfers"),
          N_("Third-party provisions: recipient, purpose, items and basis"), "table",
          f"SELECT ifNull(recipient_id, '') AS recipient, ifNull(purpose, '') AS purpose, {ITEMS} AS items, "
          f"ifNull(legal_basis, '') AS basis, ifNull(country, '') AS country, "
          f"count() AS provisions, uniqExact(subject_id) AS subjects FROM {EVENTS} "
          f"WHERE type = 'share' AND {F_EVENTS} GROUP BY recipient, purpose, basis, country "
          f"ORDER BY provisions DESC", purpose_column="purpose"),
    Panel("transfers_by_processor", N_("Provisions and transfers"),
          N_("Transfers to processors, with task, items and country"), "table",
          f"SELECT ifNull(processor_id, '') AS processor, ifNull(task, '') AS task, ifNull(purpose, '') AS purpose, "
          f"{ITEMS} AS items, ifNull(country, '') AS country, "
          f"count() AS transfers, uniqExact(subject_id) AS subjects FROM {EVENTS} "
          f"WHERE type = 'transfer' AND {F_EVENTS} GROUP BY processor, task, purpose, country "
          f"ORDER BY transfers DESC", purpose_column="purpose"),
    # -- access records (Safety Measures Art. 8) -----------------------------------------------
    Panel("access_completeness", N_("Access records"), N_("Completeness of access records"), "stat",
          f"SELECT count() AS access_records, "
          f"countIf({INCOMPLETE}) AS incomplete, "
          f"round(if(access_records = 0, 1, 1 - incomplete / access_records), 4) AS completeness "
          f"FROM {EVENTS} WHERE type = 'access' AND {F_EVENTS}",
          note=N_("complete: who (actor_id) and from where (source_ip), as PA-010 checks")),
    Panel("downloads", N_("Access records"), N_("Downloads and exports, with and without a reason"), "bars",
          f"SELECT ifNull(action, '') AS label, countIf(ifNull(reason, '') != '') AS with_reason, "
          f"countIf(ifNull(reason, '') = '') AS value, sum(record_count) AS records FROM {EVENTS} "
          f"WHERE type = 'access' AND action IN {DOWNLOADS} AND {F_EVENTS} GROUP BY label ORDER BY label",
          note=N_("value: without a reason")),
    Panel("download_list", N_("Access records"), N_("Latest downloads and exports"), "table",
          f"SELECT occurred_at, service, ifNull(actor_id, '') AS actor_id, ifNull(action, '') AS action, "
          f"ifNull(purpose, '') AS purpose, record_count, ifNull(reason, '') AS reason, subject_id, "
          f"toString(event_id) AS event_id "
          f"FROM {EVENTS} WHERE type = 'access' AND action IN {DOWNLOADS} AND {F_EVENTS} "
          f"AND ({{actor:String}} = '' OR actor_id = {{actor:String}}) "
          f"AND ({{reason:String}} = '' OR ({{reason:String}} = 'without') = (ifNull(reason, '') = '')) "
          f"ORDER BY occurred_at DESC LIMIT 200", links=True, purpose_column="purpose",
          note=N_("filter by actor and by reason (with or without) above")),
    Panel("top_actors", N_("Access records"), N_("Staff who touched the most members"), "table",
          f"SELECT ifNull(actor_id, '(none)') AS actor, any(actor_type) AS kind_of_actor, "
          f"uniqExact(subject_id) AS subjects, count() AS accesses, sum(record_count) AS records FROM {EVENTS} "
          f"WHERE type = 'access' AND ({{who:String}} = 'all' OR actor_type IN ('STAFF', 'PROCESSOR')) "
          f"AND {F_EVENTS} GROUP BY actor ORDER BY subjects DESC, accesses DESC LIMIT 20",
          note=N_("people only (staff, and processors' staff); 'Actors: everyone' adds the systems")),
    Panel("bulk_access", N_("Access records"), N_("Bulk access by actor and hour (PA-012)"), "table",
          f"SELECT ifNull(actor_id, '') AS actor_id, service, "
          f"toStartOfHour(occurred_at + INTERVAL 9 HOUR) - INTERVAL 9 HOUR AS hour_start, count() AS bulk_events, "
          f"uniqExact(subject_id) AS subjects, min(occurred_at) AS first_at, max(occurred_at) AS last_at, "
          f"any(toString(event_id)) AS event_id FROM {VIOLATIONS} WHERE rule = 'PA-012' AND {F_VIOLATIONS_ANY_RULE} "
          f"GROUP BY actor_id, service, hour_start ORDER BY hour_start DESC, bulk_events DESC LIMIT 200",
          links=True, may_be_empty=True, note=N_("an hour (KST) in which an actor's reads crossed a bulk threshold")),
    # -- consents and membership -------------------------------------------------------------
    Panel("consents_by_day", N_("Consents and withdrawals"), N_("Consents granted and withdrawn"), "stacked",
          _over_time("if(granted, 'granted', 'withdrawn')", EVENTS, f"type = 'consent' AND {F_EVENTS}")),
    Panel("membership_by_day", N_("Consents and withdrawals"), N_("Sign-ups, withdrawals and contract ends"), "stacked",
          _over_time("ifNull(change, '')", EVENTS, f"type = 'membership' AND {F_EVENTS}")),
    # -- the pipeline itself ------------------------------------------------------------------
    Panel("dlq", N_("Pipeline"), N_("Records sent to the dead-letter topic"), "table",
          "SELECT toDate(recorded_at, 'Asia/Seoul') AS day, kind, count() AS records, any(reason) AS example_reason "
          "FROM privaudit.dead_letters FINAL GROUP BY day, kind ORDER BY day DESC, kind",
          note=N_("by the day they were consumed (not filtered by event time)"), may_be_empty=True),
    Panel("lag", N_("Pipeline"), N_("Consumer lag per partition (at the last batch)"), "table",
          "SELECT kafka_partition AS partition, argMax(next_offset, updated_at) AS loaded_to, "
          "argMax(high_watermark, updated_at) AS end_seen, greatest(end_seen, loaded_to) - loaded_to AS lag, "
          "max(updated_at) AS as_of FROM privaudit.progress GROUP BY partition ORDER BY partition",
          note=N_("as the consumer saw it at its last batch; a stopped consumer's lag is not visible here")),
    Panel("verification", N_("Pipeline"), N_("Verification of the record: the latest runs of privaudit verify"),
          "table",
          "SELECT verified_at, if(ok, 'whole', 'FINDINGS') AS result, events, partitions, "
          "length(findings) AS finding_count, arrayStringConcat(arraySlice(findings, 1, 5), ' | ') AS first_findings, "
          "key_id FROM privaudit.verifications ORDER BY verified_at DESC LIMIT 10",
          note=N_("not filtered; a finding names the row changed, deleted or inserted (docs/evidence.md)")),
    Panel("emitters", N_("Pipeline"), N_("Emitters: the sequence numbers seen"), "table",
          "SELECT emitter, any(service) AS service, min(first_seq) AS first_seq, max(last_seq) AS last_seq, "
          "sum(records) AS records, max(max_occurred_at) AS last_event FROM privaudit.emitter_seqs FINAL "
          "WHERE emitter != '' GROUP BY emitter ORDER BY last_event DESC LIMIT 50",
          note=N_("each AuditEmitter numbers its records; a number that never arrives is a gap (below)")),
    Panel("emitter_gaps", N_("Pipeline"), N_("Emitter gaps: events emitted that never reached Kafka"), "table",
          "SELECT verified_at, arrayJoin(arrayFilter(x -> startsWith(x, 'gap:'), findings)) AS gap "
          "FROM privaudit.verifications WHERE verified_at = (SELECT max(verified_at) FROM privaudit.verifications)",
          note=N_("as the latest run of privaudit verify found them (PA-018); empty when there are none"),
          may_be_empty=True),
    # -- violations and alerts -------------------------------------------------------------------
    Panel("violation_list", N_("Violations"), N_("Latest violations"), "table",
          f"SELECT occurred_at, rule, severity, service, subject_id, ifNull(actor_id, '') AS actor_id, "
          f"ifNull(counterparty, '') AS counterparty, message, message_template, message_args, "
          f"toString(event_id) AS event_id FROM {VIOLATIONS} "
          f"WHERE {F_VIOLATIONS} ORDER BY occurred_at DESC LIMIT 200", links=True),
    Panel("alerts", N_("Violations"), N_("Alerts sent to on-call"), "table",
          "SELECT rule, service, party, window_start, count, sink, status, attempts, notified_at "
          "FROM privaudit.alerts FINAL WHERE window_end > {from:DateTime64(3)} AND window_start < {to:DateTime64(3)} "
          "AND ({service:String} = '' OR service = {service:String}) AND ({rule:String} = '' OR rule = {rule:String}) "
          "AND ({severity:String} = '' OR severity = {severity:String}) ORDER BY window_start DESC LIMIT 200",
          note=N_("empty unless the alert dispatcher runs"), may_be_empty=True),
)

BY_ID: dict[str, Panel] = {p.id: p for p in PANELS}

EVENT_SQL = (
    "SELECT * EXCEPT (data_items, purposes, content_hash, verdicts_hash), "
    "arrayStringConcat(data_items, ', ') AS data_items, arrayStringConcat(purposes, ', ') AS purposes, "
    "lower(hex(content_hash)) AS content_hash, lower(hex(verdicts_hash)) AS verdicts_hash "
    "FROM privaudit.events FINAL WHERE event_id = {id:UUID} LIMIT 1"
)
EVENT_VIOLATIONS_SQL = (
    "SELECT rule, severity, message, message_template, message_args, policy_version, detected_at "
    "FROM privaudit.violations FINAL "
    "WHERE event_id = {id:UUID} ORDER BY rule"
)
#: One member's page (and ``privaudit subject``): what was done with their data in a period, by
#: section. Parameters: ``{subject:String}``, ``{from:DateTime64(3)}``, ``{to:DateTime64(3)}``.
_OF_SUBJECT = "subject_id = {subject:String} AND " + IN_RANGE
_ACCESS_BY = (
    "SELECT ifNull(actor_id, '') AS actor_id, ifNull(actor_type, '') AS actor_type, ifNull(action, '') AS action, "
    "purpose, " + ITEMS + " AS items, count() AS accesses, min(occurred_at) AS first_at, max(occurred_at) AS last_at "
    f"FROM {EVENTS} WHERE type = 'access' AND {_OF_SUBJECT} AND actor_type IN %s "
    "GROUP BY actor_id, actor_type, action, purpose ORDER BY last_at DESC LIMIT 500"
)
SUBJECT_SECTIONS: dict[str, str] = {
    "summary": (
        f"SELECT count() AS events, countIf(type = 'access' AND actor_type IN ('STAFF', 'PROCESSOR')) AS by_staff, "
        f"countIf(type = 'access' AND actor_type = 'SYSTEM') AS by_systems, "
        f"countIf(type IN ('share', 'transfer')) AS provided, "
        f"(SELECT count() FROM {VIOLATIONS} WHERE {_OF_SUBJECT}) AS violations, "
        f"min(occurred_at) AS first_at, max(occurred_at) AS last_at FROM {EVENTS} WHERE {_OF_SUBJECT}"
    ),
    # people first: staff, and processors' staff; the systems' automatic processing apart
    "staff": _ACCESS_BY % "('STAFF', 'PROCESSOR')",
    "systems": _ACCESS_BY % "('SYSTEM')",
    "provided": (
        "SELECT occurred_at, type, coalesce(recipient_id, processor_id, '') AS counterparty, ifNull(purpose, '') "
        "AS purpose, ifNull(task, '') AS task, arrayStringConcat(data_items, ', ') AS items, ifNull(country, '') AS "
        f"country, ifNull(legal_basis, '') AS basis, toString(event_id) AS event_id FROM {EVENTS} "
        f"WHERE type IN ('share', 'transfer') AND {_OF_SUBJECT} ORDER BY occurred_at DESC LIMIT 500"
    ),
    "consents": (
        "SELECT occurred_at, type, multiIf(type = 'consent', if(granted, 'GRANTED', 'WITHDRAWN'), ifNull(change, '')) "
        "AS change, ifNull(scope, '') AS scope, ifNull(target, '') AS target, arrayStringConcat(purposes, ', ') AS "
        f"purposes, service, toString(event_id) AS event_id FROM {EVENTS} "
        f"WHERE type IN ('consent', 'membership') AND {_OF_SUBJECT} ORDER BY occurred_at DESC LIMIT 500"
    ),
    "violations": (
        "SELECT occurred_at, rule, severity, service, ifNull(actor_id, '') AS actor_id, message, message_template, "
        f"message_args, toString(event_id) AS event_id FROM {VIOLATIONS} WHERE {_OF_SUBJECT} "
        "ORDER BY occurred_at DESC LIMIT 500"
    ),
}
FILTERS_SQL = (
    "SELECT min(occurred_at) AS first, max(occurred_at) AS last, groupUniqArray(service) AS services "
    "FROM privaudit.events"
)
