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
from datetime import UTC, datetime
from typing import Any

from privaudit.bus import Record
from privaudit.canonical import CONTENT_FIELDS, content_hash
from privaudit.checker import Checker, Violation
from privaudit.checker.rules import rewrite_violation
from privaudit.errors import REASON_LIMIT, DecodeError, EventError, NoPolicyInForce, excerpt
from privaudit.evidence import RecordKind, dead_letter_record, event_record, verdicts_hash
from privaudit.policy import to_millis
from privaudit.schemas import Codec, Event
from privaudit.schemas.headers import parse as parse_sequence
from privaudit.schemas.identifiers import mask_rrn
from privaudit.schemas.models import stored_content
from privaudit.store.ddl import (
    EMITTER_SEQ_COLUMN_NAMES,
    EVENT_COLUMN_NAMES,
    REPEAT_COLUMN_NAMES,
    REWRITE_COLUMN_NAMES,
    STATE_COLUMN_NAMES,
    VIOLATION_COLUMN_NAMES,
    position,
)

from .seen import Seen


def _columns(names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [] for name in names}


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
assert len(EMITTER_SEQ_COLUMN_NAMES) == 12

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
class LedgerEntry:
    """One range's place in its partition's hash chain (a row of ``ledger`` once signed)."""

    prev_head: bytes
    head: bytes
    counts: tuple[int, int, int, int, int]  # events, dead letters, repeats, rewrites, absent offsets
    min_occurred_at: datetime | None
    max_occurred_at: datetime | None
    first_offset: int  # where the range's part of the chain starts: its first offset, or earlier
    # when offsets before it were never returned by the broker


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
    repeats: dict[str, list[Any]] = field(default_factory=lambda: _columns(REPEAT_COLUMN_NAMES))
    rewrites: dict[str, list[Any]] = field(default_factory=lambda: _columns(REWRITE_COLUMN_NAMES))
    ledger: LedgerEntry | None = None
    sequences: list[tuple[Any, ...]] = field(default_factory=list)  # rows of ``emitter_seqs``
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
            incarnation: int = 0, seen: Seen | None = None) -> PartitionBatch:
    """:func:`decode` then :func:`check`, for a checker that holds every subject it needs."""
    return check(decode(records, codec, not_after_ms), checker, incarnation, seen)


def check(decoded: Decoded, checker: Checker, incarnation: int = 0, seen: Seen | None = None) -> PartitionBatch:
    """Check the decoded events in offset order and lay out everything to load and publish. The
    checker must hold the state of the subjects they name (the consumer loads what it does not
    hold first, for all of a poll's ranges at once).

    ``seen`` is the partition's memory (:mod:`.seen`; a fresh one when None): an event id it holds
    with the same content makes the record a repeat (stored once, noted in ``repeats``), with other
    content a rewrite (kept aside in ``rewrites``, PA-016, the first copy unchanged); neither is
    checked again. Every offset of the range then extends the partition's hash chain
    (:mod:`privaudit.evidence.chain`): ``batch.ledger``."""
    seen = seen if seen is not None else Seen()
    first, last = decoded.records[0], decoded.records[-1]
    seen.trim(first.offset)
    dead = [replace(d, incarnation=incarnation) for d in decoded.dead]
    batch = PartitionBatch(first.topic, first.partition, first.offset, last.offset, dead=dead, incarnation=incarnation)
    counts = batch.counts
    rows: list[tuple[Any, ...]] = []
    rewrites: list[tuple[Any, ...]] = []
    chained: dict[int, bytes] = {}
    low: datetime | None = None
    for record, event in decoded.events:
        offset = record.offset
        content = stored_content(event)
        event_id = content[0]
        digest = content_hash(content)
        where = (record.topic, record.partition, offset, incarnation, position(incarnation, record.partition, offset))
        known = seen.lookup(event_id, offset)
        if known is not None and known[0] == digest:  # a repeat: stored once
            repeats = batch.repeats
            for name, value in zip(REPEAT_COLUMN_NAMES, (*where, event_id, event.occurred_at, digest, known[1]),
                                   strict=True):
                repeats[name].append(value)
            chained[offset] = event_record(RecordKind.REPEAT, digest)
            continue
        if known is not None:  # a rewrite: kept aside, the first copy stays
            verdicts = [rewrite_violation(event_id, f"offset {known[1]}", _version_at(checker, event))]
            kind, version = RecordKind.REWRITE, ""
        else:
            try:
                verdicts = checker.check(event)
            except NoPolicyInForce as exc:
                batch.dead.append(DeadLetter(record, "policy", str(exc), incarnation))
                continue
            kind = RecordKind.EVENT
            version = "" if event.type in ("consent", "membership") else _version(checker, verdicts, event)
        judged = verdicts_hash((v.rule, v.severity, v.message, v.policy_version) for v in verdicts)
        row = (*content, version, *where, digest, judged)
        chained[offset] = event_record(kind, digest, version, judged)
        for v in verdicts:
            add_violation(
                batch.violations, batch.published, v, event_id=event.event_id, occurred_at=event.occurred_at,
                event_type=event.type, service=event.service, subject_id=event.subject_id,
                actor_id=event.__dict__.get("actor_id"), counterparty=_counterparty(event), record=where,
            )
            counts[v.rule] = counts.get(v.rule, 0) + 1
        if kind == RecordKind.REWRITE:
            rewrites.append((*row, known[1]))  # type: ignore[index]  # known is set for a rewrite
            continue
        rows.append(row)
        seen.remember(event_id, digest, offset)
        if event.type in ("consent", "membership"):
            _state_row(batch.state, event, record, incarnation)
        if batch.max_occurred_at is None or event.occurred_at > batch.max_occurred_at:
            batch.max_occurred_at = event.occurred_at
        if low is None or event.occurred_at < low:
            low = event.occurred_at
    batch.events = _columns_of(rows, _EVENT_ROW)
    batch.rewrites = _columns_of(rewrites, (*_EVENT_ROW, "first_offset"))
    batch.dead.sort(key=lambda d: d.record.offset)
    for d in batch.dead:
        chained[d.record.offset] = dead_letter_record(d.kind, d.reason)
    batch.ledger = _extend_chain(seen, first.offset, last.offset, chained, low, batch.max_occurred_at,
                                 (len(rows), len(batch.dead), len(batch.repeats["event_id"]), len(rewrites)))
    batch.sequences = _sequences(decoded, incarnation)
    return batch


def _sequences(decoded: Decoded, incarnation: int) -> list[tuple[Any, ...]]:
    """The ``emitter_seqs`` rows of a range: per emitter, each run of consecutive sequence numbers
    (repeats fold into their run), and one row counting the records that carried none."""
    first, last = decoded.records[0], decoded.records[-1]
    events = {r.offset: e for r, e in decoded.events}
    seen: dict[str, list[tuple[int, Event | None]]] = {}
    unsequenced = 0
    for record in decoded.records:
        stamp = parse_sequence(record.headers)
        if stamp is None:
            unsequenced += 1
        else:
            seen.setdefault(stamp[0], []).append((stamp[1], events.get(record.offset)))
    where = (first.topic, first.partition, incarnation, first.offset, last.offset)
    rows: list[tuple[Any, ...]] = []
    if unsequenced:
        rows.append(("", "", 0, 0, unsequenced, EPOCH, EPOCH, *where))
    for emitter, stamps in seen.items():
        stamps.sort(key=lambda s: s[0])
        run: list[tuple[int, Event | None]] = []
        for numbered in stamps:
            if run and numbered[0] > run[-1][0] + 1:
                rows.append(_run(emitter, run, where))
                run = []
            run.append(numbered)
        rows.append(_run(emitter, run, where))
    return rows


def _run(emitter: str, run: list[tuple[int, Event | None]], where: tuple[Any, ...]) -> tuple[Any, ...]:
    times = [e.occurred_at for _, e in run if e is not None]
    service = next((e.service for _, e in run if e is not None), "")
    return (emitter, service, run[0][0], run[-1][0], len(run), min(times, default=EPOCH), max(times, default=EPOCH),
            *where)


def _extend_chain(seen: Seen, first: int, last: int, chained: dict[int, bytes], low: datetime | None,
                  high: datetime | None, counts: tuple[int, int, int, int]) -> LedgerEntry:
    """Every offset from where the partition's chain stands (or ``first``) to ``last`` into the
    chain; one the broker did not return (a transaction marker, compacted away) as absent."""
    chain = seen.chain
    start = first if chain.next_offset is None else chain.next_offset
    prev = chain.head
    for offset in range(start, last + 1):
        chain.add(offset, chained.get(offset, RecordKind.ABSENT))
    absent = (last + 1 - start) - len(chained)
    return LedgerEntry(prev, chain.head, (*counts, absent), low, high, start)


def _version_at(checker: Checker, event: Event) -> str:
    version = checker.policy.version_at(to_millis(event.occurred_at))
    return version.label if version is not None else ""


def _version(checker: Checker, verdicts: list[Violation], event: Event) -> str:
    return verdicts[0].policy_version if verdicts else _version_at(checker, event)


def _counterparty(event: Event) -> str | None:
    return getattr(event, "recipient_id", None) or getattr(event, "processor_id", None)


#: The ``events`` columns of a row tuple: the content (privaudit.store.canonical), then the rest.
_EVENT_ROW = (*CONTENT_FIELDS, "checked_version", "kafka_topic", "kafka_partition", "kafka_offset",
              "kafka_incarnation", "kafka_position", "content_hash", "verdicts_hash")
assert sorted(_EVENT_ROW) == sorted(EVENT_COLUMN_NAMES), "batch.py's event row and the events table disagree"


def _columns_of(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    if not rows:
        return _columns(names)
    return {name: list(column) for name, column in zip(names, zip(*rows, strict=True), strict=True)}


def add_violation(
    cols: dict[str, list[Any]], published: list[tuple[bytes, bytes]], v: Violation, *, event_id: str,
    occurred_at: datetime, event_type: str, service: str, subject_id: str, actor_id: str | None,
    counterparty: str | None, record: tuple[str, int, int, int, int],
) -> None:
    """One verdict as a ``violations`` row and as the JSON published to ``privaudit.violations``
    (for the alert dispatcher); ``record`` is the event's (topic, partition, offset, incarnation,
    position)."""
    topic, partition, offset, incarnation, kafka_position = record
    row = {
        "event_id": event_id, "rule": v.rule, "severity": v.severity, "message": v.message,
        "policy_version": v.policy_version, "occurred_at": occurred_at, "type": event_type, "service": service,
        "subject_id": subject_id, "actor_id": actor_id, "counterparty": counterparty,
        "kafka_topic": topic, "kafka_partition": partition, "kafka_offset": offset, "kafka_incarnation": incarnation,
        "kafka_position": kafka_position, "message_template": v.template,
        "message_args": json.dumps(dict(v.args), ensure_ascii=False) if v.args else "",
    }
    for name, value in row.items():
        cols[name].append(value)
    payload = {name: row[name] for name in ("event_id", "rule", "severity", "message", "policy_version",
                                            "message_template", "message_args")}
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
