"""One partition's slice of a polled batch in, everything to load and publish out. No I/O.

For each record, in offset order: decode and validate (a failure is a dead letter with its reason,
and the partition goes on), check against the policy in force, and lay the event out as a row of
``events``, its verdicts as rows of ``violations``, and consent or membership changes as rows of
``subject_state`` (the checker state, restored from there after a restart or a rebalance).
Rows are built column by column, as they are inserted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from privaudit.bus import Record
from privaudit.checker import Checker, Violation
from privaudit.errors import REASON_LIMIT, DecodeError, EventError, NoPolicyInForce, excerpt
from privaudit.policy import to_millis
from privaudit.schemas import Codec, Event
from privaudit.schemas.identifiers import mask_rrn
from privaudit.store.ddl import EVENT_COLUMN_NAMES, STATE_COLUMN_NAMES, VIOLATION_COLUMN_NAMES


def _columns(names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [] for name in names}


#: The largest record value a dead letter carries as it is. Larger (up to what the broker let in),
#: its size and SHA-256 travel instead: a dead letter must fit the broker's message size (1 MB by
#: default), or it is refused and retried for ever while the partition waits.
DEAD_LETTER_VALUE_LIMIT = 900 * 1024


@dataclass
class DeadLetter:
    record: Record
    kind: str  # decode | contract | policy
    reason: str  # one line, at most REASON_LIMIT characters
    incarnation: int = 0  # the life of the topic the record was read in

    def __post_init__(self) -> None:
        # a reason may quote a field, which may hold a resident registration number: masked
        self.reason = excerpt(mask_rrn(self.reason)[0], REASON_LIMIT, quoted=False)

    def value(self) -> bytes | None:
        """What the dead-letter topic gets: the record's value, or when that would not fit the
        broker, a JSON note of its size and hash (the value stays in the source topic, at the offset
        the headers give). A tombstone stays a tombstone."""
        value = self.record.value
        if value is None or len(value) <= DEAD_LETTER_VALUE_LIMIT:
            return value
        return json.dumps({"omitted": "the value is too large to be carried here", "size": len(value),
                           "sha256": hashlib.sha256(value).hexdigest()}).encode()

    def headers(self) -> list[tuple[str, bytes]]:
        r = self.record
        headers = [
            ("privaudit.error", self.kind.encode()),
            ("privaudit.reason", self.reason.encode("utf-8")),
            ("source.topic", r.topic.encode()),
            ("source.partition", str(r.partition).encode()),
            ("source.offset", str(r.offset).encode()),
        ]
        if r.value is None:
            headers.append(("privaudit.tombstone", b"true"))
        elif len(r.value) > DEAD_LETTER_VALUE_LIMIT:
            headers += [("privaudit.value-size", str(len(r.value)).encode()),
                        ("privaudit.value-sha256", hashlib.sha256(r.value).hexdigest().encode())]
        return headers


@dataclass
class PartitionBatch:
    """What one contiguous range of one partition produced."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    events: dict[str, list[Any]] = field(default_factory=lambda: _columns(EVENT_COLUMN_NAMES))
    violations: dict[str, list[Any]] = field(default_factory=lambda: _columns(VIOLATION_COLUMN_NAMES))
    state: dict[str, list[Any]] = field(default_factory=lambda: _columns(STATE_COLUMN_NAMES))
    dead: list[DeadLetter] = field(default_factory=list)
    published: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, JSON) for the violations topic
    max_occurred_at: datetime | None = None
    high_watermark: int = 0  # the partition's end as the client last saw it (for the lag shown)
    replayed: bool = False  # a range planned before a restart: loaded by :meth:`Sink.repair`
    counts: dict[str, int] = field(default_factory=dict)
    incarnation: int = 0  # the life of the topic the range was read in (``incarnations``)

    @property
    def size(self) -> int:
        return self.last_offset - self.first_offset + 1


@dataclass
class Decoded:
    """One partition's contiguous range, decoded: its events and the records that failed."""

    records: list[Record]
    events: list[tuple[Record, Event]]
    dead: list[DeadLetter]

    @property
    def first_offset(self) -> int:
        return self.records[0].offset


def decode(records: list[Record], codec: Codec, not_after_ms: int | None = None) -> Decoded:
    """``records`` are one partition's, contiguous and in offset order; an event dated after
    ``not_after_ms`` (now plus the clock-skew allowance) is a contract error."""
    decoded: list[tuple[Record, Event]] = []
    dead: list[DeadLetter] = []
    for record in records:
        try:
            decoded.append((record, codec.decode(record.value, not_after_ms=not_after_ms)))
        except DecodeError as exc:
            dead.append(DeadLetter(record, "decode", str(exc)))
        except EventError as exc:
            dead.append(DeadLetter(record, "contract", str(exc)))
    return Decoded(records, decoded, dead)


def process(records: list[Record], codec: Codec, checker: Checker, not_after_ms: int | None = None,
            incarnation: int = 0) -> PartitionBatch:
    """:func:`decode` then :func:`check`, for a checker that holds every subject it needs."""
    return check(decode(records, codec, not_after_ms), checker, incarnation)


def check(decoded: Decoded, checker: Checker, incarnation: int = 0) -> PartitionBatch:
    """Check the decoded events in offset order and lay out everything to load and publish. The
    checker must hold the state of the subjects they name (the consumer loads what it does not
    hold first, for all of a poll's ranges at once)."""
    first, last = decoded.records[0], decoded.records[-1]
    dead = [replace(d, incarnation=incarnation) for d in decoded.dead]
    batch = PartitionBatch(first.topic, first.partition, first.offset, last.offset, dead=dead, incarnation=incarnation)
    counts = batch.counts
    rows: list[tuple[Any, ...]] = []
    for record, event in decoded.events:
        try:
            verdicts = checker.check(event)
        except NoPolicyInForce as exc:
            batch.dead.append(DeadLetter(record, "policy", str(exc), incarnation))
            continue
        version = "" if event.type in ("consent", "membership") else _version(checker, verdicts, event)
        rows.append(_event_row(event, record, version, incarnation))
        for v in verdicts:
            add_violation(
                batch.violations, batch.published, v, event_id=event.event_id, occurred_at=event.occurred_at,
                event_type=event.type, service=event.service, subject_id=event.subject_id,
                actor_id=event.__dict__.get("actor_id"), counterparty=_counterparty(event),
                record=(record.topic, record.partition, record.offset, incarnation),
            )
            counts[v.rule] = counts.get(v.rule, 0) + 1
        if event.type in ("consent", "membership"):
            _state_row(batch.state, event, record, incarnation)
        if batch.max_occurred_at is None or event.occurred_at > batch.max_occurred_at:
            batch.max_occurred_at = event.occurred_at
    batch.events = _columns_of(rows)
    batch.dead.sort(key=lambda d: d.record.offset)
    return batch


def _version(checker: Checker, verdicts: list[Violation], event: Event) -> str:
    if verdicts:
        return verdicts[0].policy_version
    version = checker.policy.version_at(to_millis(event.occurred_at))
    return version.label if version is not None else ""


def _counterparty(event: Event) -> str | None:
    return getattr(event, "recipient_id", None) or getattr(event, "processor_id", None)


#: The ``events`` columns an event fills, in the order of :func:`_event_row`'s tuple.
_EVENT_ROW = (
    "event_id", "type", "occurred_at", "service", "subject_id", "policy_version", "checked_version",
    "actor_id", "actor_type", "processor_id", "from_processor_id", "recipient_id", "country", "action",
    "purpose", "task", "legal_basis", "consent_id", "data_items", "source_ip", "record_count", "reason",
    "scope", "target", "granted", "purposes", "change", "kafka_topic", "kafka_partition", "kafka_offset",
    "kafka_incarnation",
)
assert sorted(_EVENT_ROW) == sorted(EVENT_COLUMN_NAMES), "batch.py's event row and the events table disagree"


def _event_row(e: Event, r: Record, version: str, incarnation: int) -> tuple[Any, ...]:
    """One ``events`` row as a tuple (the batch is turned into columns once, at its end: one tuple
    per event costs a third of thirty appends to thirty lists)."""
    get = e.__dict__.get
    return (
        e.event_id, e.type, e.occurred_at, e.service, e.subject_id, e.policy_version, version,
        get("actor_id"), get("actor_type"), get("processor_id"), get("from_processor_id"), get("recipient_id"),
        get("recipient_country") or get("destination_country"), get("action"), get("purpose"), get("task"),
        get("legal_basis"), get("consent_id"), get("data_items") or [], get("source_ip"), get("record_count") or 1,
        get("reason"), get("scope"), get("target"), get("granted"), get("purposes") or [], get("change"),
        r.topic, r.partition, r.offset, incarnation,
    )


def _columns_of(rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    if not rows:
        return _columns(_EVENT_ROW)
    return {name: list(column) for name, column in zip(_EVENT_ROW, zip(*rows, strict=True), strict=True)}


def add_violation(
    cols: dict[str, list[Any]], published: list[tuple[bytes, bytes]], v: Violation, *, event_id: str,
    occurred_at: datetime, event_type: str, service: str, subject_id: str, actor_id: str | None,
    counterparty: str | None, record: tuple[str, int, int, int],
) -> None:
    """One verdict as a ``violations`` row and as the JSON published to ``privaudit.violations``
    (for the alert dispatcher); ``record`` is the event's (topic, partition, offset, incarnation)."""
    topic, partition, offset, incarnation = record
    row = {
        "event_id": event_id, "rule": v.rule, "severity": v.severity, "message": v.message,
        "policy_version": v.policy_version, "occurred_at": occurred_at, "type": event_type, "service": service,
        "subject_id": subject_id, "actor_id": actor_id, "counterparty": counterparty,
        "kafka_topic": topic, "kafka_partition": partition, "kafka_offset": offset, "kafka_incarnation": incarnation,
    }
    for name, value in row.items():
        cols[name].append(value)
    payload = {name: row[name] for name in ("event_id", "rule", "severity", "message", "policy_version")}
    payload.update(
        occurred_at=occurred_at.isoformat(timespec="milliseconds"), type=event_type, service=service,
        subject_id=subject_id, actor_id=actor_id, counterparty=counterparty,
        source={"topic": topic, "partition": partition, "offset": offset},
    )
    # Keyed by what the alert dispatcher groups on, so one group's violations share a partition.
    key = f"{v.rule}|{service}|{counterparty or actor_id or ''}"
    published.append((key.encode("utf-8"), json.dumps(payload, ensure_ascii=False).encode("utf-8")))


def _state_row(cols: dict[str, list[Any]], e: Event, r: Record, incarnation: int) -> None:
    get = e.__dict__.get
    cols["kafka_topic"].append(r.topic)
    cols["kafka_partition"].append(r.partition)
    cols["kafka_offset"].append(r.offset)
    cols["kafka_incarnation"].append(incarnation)
    cols["subject_id"].append(e.subject_id)
    cols["event_id"].append(e.event_id)
    cols["occurred_at"].append(e.occurred_at)
    cols["kind"].append(e.type)
    cols["consent_id"].append(get("consent_id"))
    cols["scope"].append(get("scope"))
    cols["target"].append(get("target"))
    cols["granted"].append(get("granted"))
    cols["purposes"].append(get("purposes") or [])
    cols["data_items"].append(get("data_items") or [])
    cols["change"].append(get("change"))
