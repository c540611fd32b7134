"""``privaudit verify``: recompute every partition's hash chain from the stored rows and check it
against the signed heads in ``ledger`` (docs/evidence.md).

For each range of the ledger, in each partition of each life of each topic:

1. its signature, over :func:`~privaudit.evidence.keys.statement`, with the auditor's public key;
2. that it starts where the range before it ended, from the head that range signed;
3. each offset of it, from the rows that name it: an event's content hash is recomputed by the
   engine from its columns (:func:`privaudit.canonical.content_sql`) and compared with the hash it was
   loaded with; its verdicts are hashed again from ``violations`` (PA-012, which the bulk stage
   adds later over many events, is not part of an event's record); offsets with no row, or with
   rows of two kinds, are named;
4. the chain recomputed over the range, against the head it signed.

Then, over the whole store: rows of ``events`` no ledger range accounts for (inserted afterwards),
partitions loaded further than their ledger reaches, and event ids stored with two contents beyond
the consumer's window (PA-016 it could not see). A range whose events have passed the retention
period may have lost rows to the TTL: its signature and place in the chain are checked, its rows
not (the range after it starts from the head it signed: a checkpoint).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from privaudit.canonical import CONTENT_FIELDS, content_sql, field_sql
from privaudit.store import Statements

from .chain import (
    GENESIS,
    RecordKind,
    dead_letter_record,
    event_record,
    link,
    verdicts_hash,
)
from .keys import Verifier, statement

log = logging.getLogger("privaudit.verify")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Offsets read from the store at a time, per partition (bounds memory: ~300 bytes an offset).
CHUNK_OFFSETS = 500_000
#: Rows listed per finding of one kind before the rest are counted.
MAX_LISTED = 50
#: Verdicts added after loading, over many events, by the bulk stage: not part of an event's record.
LATER_RULES = ("PA-012",)
#: A hole in an emitter's numbers is final once its later records run this far past the hole.
DEFAULT_GRACE_S = 15 * 60.0


@dataclass(frozen=True)
class Finding:
    kind: str  # changed | deleted | inserted | unsigned | signature | chain | unledgered | rewrite
    table: str
    where: str  # "privaudit.events[0] life 0 offset 17", a range, an event id
    detail: str

    def line(self) -> str:
        return f"{self.kind}: {self.table} {self.where}: {self.detail}"

    def violation(self, at: datetime) -> tuple[bytes, bytes]:
        """The finding as a record of ``privaudit.violations`` (key, JSON), for the alert dispatcher:
        PA-018 for an emitter's gap, PA-017 for anything else. Its id is the same for the same
        finding, so alerting on it twice is one group."""
        rule, severity = ("PA-018", "high") if self.kind == "gap" else ("PA-017", "critical")
        service = self.where.rsplit("(", 1)[-1].rstrip(")") if self.kind == "gap" else "privaudit"
        party = self.where if self.kind == "gap" else self.table
        payload = {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"privaudit-verify:{self.line()}")), "rule": rule,
            "severity": severity, "message": self.line()[:1024], "policy_version": "",
            "occurred_at": at.isoformat(timespec="milliseconds"), "type": "verification", "service": service,
            "subject_id": "", "actor_id": None, "counterparty": party, "source": None,
        }
        return f"{rule}|{service}|{party}".encode(), json.dumps(payload, ensure_ascii=False).encode()

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "table": self.table, "where": self.where, "detail": self.detail}


@dataclass
class Report:
    events: int = 0
    ranges: int = 0
    partitions: set[tuple[str, int, int]] = field(default_factory=set)
    months: set[str] = field(default_factory=set)  # KST months (YYYY-MM) of the events read
    beyond_retention: int = 0  # ranges whose rows were not read (the TTL may have removed them)
    emitters: int = 0
    unsequenced: int = 0  # records that carried no emitter sequence (other producers)
    open_holes: int = 0  # holes in an emitter's numbers still within the grace period
    unsigned_key_ids: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    elapsed_s: float = 0.0
    key_id: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        months = len(self.months)
        return (f"verified {self.events:,} events in {len(self.partitions)} partition(s), {months} month(s), "
                f"{len(self.findings)} finding(s)")

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "ranges": self.ranges, "partitions": len(self.partitions),
                "months": sorted(self.months), "beyond_retention_ranges": self.beyond_retention,
                "emitters": self.emitters, "unsequenced_records": self.unsequenced, "open_holes": self.open_holes,
                "key_id": self.key_id, "elapsed_s": round(self.elapsed_s, 3),
                "findings": [f.as_dict() for f in self.findings]}


@dataclass(frozen=True)
class _Range:
    topic: str
    partition: int
    life: int
    first: int
    last: int
    prev: bytes
    head: bytes
    counts: tuple[int, int, int, int, int]
    low: datetime
    high: datetime
    key_id: str
    signature: bytes

    def where(self) -> str:
        return f"{self.topic}[{self.partition}] life {self.life} offsets {self.first}-{self.last}"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Verification:
    def __init__(self, store: Statements, verifier: Verifier | None, *, retention_days: int,
                 since: datetime | None = None, until: datetime | None = None,
                 now: datetime | None = None, progress: Callable[[str], None] | None = None,
                 grace_s: float = DEFAULT_GRACE_S) -> None:
        self.grace_ms = int(grace_s * 1000)
        self.store = store
        self.db = store.database
        self.verifier = verifier
        self.since, self.until = since, until
        self.now = now or datetime.now(UTC)
        self.retention_days = retention_days
        self.progress = progress or (lambda _line: None)
        self.report = Report(key_id=verifier.key_id if verifier else "")

    # -- the whole run ----------------------------------------------------------------------

    def run(self) -> Report:
        started = time.perf_counter()
        ranges = self._ranges()
        by_partition: dict[tuple[str, int, int], list[_Range]] = defaultdict(list)
        for r in ranges:
            by_partition[(r.topic, r.life, r.partition)].append(r)
        for key, chain in sorted(by_partition.items()):
            self._partition(key, chain)
        self._coverage(by_partition)
        self._rewrites_beyond_window()
        self._emitter_gaps()
        self.report.elapsed_s = time.perf_counter() - started
        return self.report

    def _add(self, kind: str, table: str, where: str, detail: str) -> None:
        self.report.findings.append(Finding(kind, table, where, detail))

    def _ranges(self) -> list[_Range]:
        _, rows = self.store.query(
            "SELECT kafka_topic, kafka_partition, kafka_incarnation, first_offset, last_offset, prev_head, head, "
            "events, dead_letters, repeats, rewrites, absent, min_occurred_at, max_occurred_at, key_id, signature "
            f"FROM {self.db}.ledger FINAL ORDER BY kafka_topic, kafka_incarnation, kafka_partition, first_offset")
        out = []
        for (topic, partition, life, first, last, prev, head, n_e, n_d, n_r, n_w, n_a, low, high, key_id,
             signature) in rows:
            out.append(_Range(str(topic), int(partition), int(life), int(first), int(last), _bytes(prev),
                              _bytes(head), (int(n_e), int(n_d), int(n_r), int(n_w), int(n_a)), _utc(low),
                              _utc(high), str(key_id), _bytes(signature)))
        return out

    def _in_period(self, r: _Range) -> bool:
        if r.counts[0] + r.counts[3] == 0:  # no event: dead letters, repeats or absent offsets only
            return True
        if self.since is not None and r.high < self.since:
            return False
        return not (self.until is not None and r.low >= self.until)

    # -- one partition ----------------------------------------------------------------------

    def _partition(self, key: tuple[str, int, int], chain: list[_Range]) -> None:
        topic, life, partition = key
        self.report.partitions.add(key)
        expired_before = self.now - timedelta(days=self.retention_days)
        previous: _Range | None = None
        todo: list[_Range] = []
        for r in chain:
            self._signature(r)
            if previous is None:
                if r.prev != GENESIS:
                    self._add("chain", "ledger", r.where(),
                              "the first range kept does not start from the genesis head (earlier ranges deleted?)")
            elif r.first != previous.last + 1:
                if r.first > previous.last + 1:
                    self._add("deleted", "ledger", f"{topic}[{partition}] life {life}",
                              f"offsets {previous.last + 1}-{r.first - 1} are in no ledger range")
                else:
                    self._add("chain", "ledger", r.where(), f"overlaps the range ending at {previous.last}")
            elif r.prev != previous.head:
                self._add("chain", "ledger", r.where(), "does not start from the head the range before it signed")
            previous = r
            if not self._in_period(r):
                continue
            if r.low.year > 1970 and r.low < expired_before:
                self.report.beyond_retention += 1
                continue
            todo.append(r)
        # read the rows a chunk of ranges at a time
        chunk: list[_Range] = []
        for r in todo:
            if chunk and (r.last - chunk[0].first > CHUNK_OFFSETS or r.first != chunk[-1].last + 1):
                self._recompute(topic, life, partition, chunk)
                chunk = []
            chunk.append(r)
        if chunk:
            self._recompute(topic, life, partition, chunk)

    def _signature(self, r: _Range) -> None:
        if not r.signature.strip(b"\x00"):
            self._add("unsigned", "ledger", r.where(), "the head was stored without a signature")
            return
        if self.verifier is None:
            return
        if r.key_id != self.verifier.key_id:
            self._add("signature", "ledger", r.where(),
                      f"signed with key {r.key_id or '?'}, not the trusted key {self.verifier.key_id}")
            return
        signed = statement(r.topic, r.partition, r.life, r.first, r.last, r.prev, r.head, r.counts, r.low, r.high)
        if not self.verifier.verify(signed, r.signature):
            self._add("signature", "ledger", r.where(), "the head, its range or its counts do not match its signature")

    def _recompute(self, topic: str, life: int, partition: int, ranges: list[_Range]) -> None:
        lo, hi = ranges[0].first, ranges[-1].last
        self.progress(f"{topic}[{partition}] life {life}: offsets {lo:,}-{hi:,}")
        rows = _Rows(self, topic, life, partition, lo, hi)
        place = f"{topic}[{partition}] life {life}"
        changed: list[int] = []
        for r in ranges:
            head = r.prev
            counts = [0, 0, 0, 0, 0]
            absent: list[int] = []
            for offset in range(r.first, r.last + 1):
                record, kind = rows.record(offset, place, changed)
                counts[kind] += 1
                if kind == 4:
                    absent.append(offset)
                head = link(head, offset, record)
            if len(absent) > r.counts[4]:
                # more offsets without a row than the broker skipped: rows deleted (which ones, when
                # the broker skipped none; else these are the candidates)
                which = "" if r.counts[4] == 0 else f" ({r.counts[4]} of these the broker never returned)"
                for offset in absent[:MAX_LISTED]:
                    self._add("deleted", "events/dead_letters/repeats/rewrites", f"{place} offset {offset}",
                              f"no row, where the signed range has one{which}")
            self.report.events += counts[0]
            self.report.ranges += 1
            if tuple(counts) != r.counts:
                names = ("events", "dead letters", "repeats", "rewrites", "offsets without a row")
                differ = ", ".join(f"{names[i]} {r.counts[i]} signed, {counts[i]} stored"
                                   for i in range(5) if counts[i] != r.counts[i])
                self._add("deleted" if sum(counts[:4]) < sum(r.counts[:4]) else "inserted", "ledger", r.where(),
                          differ)
            if head != r.head:
                self._add("chain", "ledger", r.where(), "the rows stored do not hash to the head it signed")
        self.report.months |= rows.months
        if changed:
            self._fields(topic, life, partition, changed)

    def _fields(self, topic: str, life: int, partition: int, offsets: list[int]) -> None:
        """Name the fields of changed ``events`` rows: their hashes now against those the engine
        wrote when the row was inserted (``event_fields``, which an ALTER of ``events`` does not touch)."""
        now = "[" + ", ".join(f"cityHash64({field_sql(name)})" for name in CONTENT_FIELDS) + "]"
        where = ("WHERE kafka_topic = {t:String} AND kafka_partition = {p:UInt16} AND kafka_incarnation = {i:UInt32} "
                 "AND kafka_offset IN {o:Array(UInt64)}")
        _, rows = self.store.query(
            f"SELECT e.kafka_offset, e.now, f.hashes FROM (SELECT kafka_offset, {now} AS now FROM {self.db}.events "
            f"{where}) AS e INNER JOIN (SELECT kafka_offset, any(hashes) AS hashes FROM {self.db}.event_fields {where} "
            "GROUP BY kafka_offset) AS f ON e.kafka_offset = f.kafka_offset",
            {"t": topic, "p": partition, "i": life, "o": offsets[:MAX_LISTED]})
        named: dict[int, list[str]] = {}
        for offset, current, loaded in rows:
            named[int(offset)] = [CONTENT_FIELDS[i] for i, (a, b) in enumerate(zip(current, loaded, strict=True))
                                  if a != b]
        for finding in self.report.findings:
            if finding.kind == "changed" and finding.table == "events":
                offset = int(finding.where.rsplit(" ", 1)[1])
                fields = named.get(offset)
                if fields and finding.where.startswith(f"{topic}[{partition}] life {life} "):
                    index = self.report.findings.index(finding)
                    self.report.findings[index] = Finding(
                        finding.kind, finding.table, finding.where, f"{finding.detail} (field: {', '.join(fields)})")

    # -- the whole store --------------------------------------------------------------------

    def _coverage(self, by_partition: dict[tuple[str, int, int], list[_Range]]) -> None:
        """Rows of ``events`` that no ledger range accounts for, and partitions loaded past their
        ledger (``progress``)."""
        _, since_rows = self.store.query(
            f"SELECT min(applied_at) FROM {self.db}.schema_migrations WHERE version = 7")
        began = since_rows[0][0] if since_rows else None
        # rows outside each partition's ledger span, found by the engine (a row inside one is judged
        # offset by offset)
        spans = sorted((key, chain[0].first, chain[-1].last) for key, chain in by_partition.items())
        outside = (
            f"FROM {self.db}.events WHERE loaded_at >= {{b:DateTime64(3, 'UTC')}} AND NOT ("
            "(indexOf({k:Array(String)}, concat(kafka_topic, '/', toString(kafka_incarnation), '/', "
            "toString(kafka_partition))) AS i) > 0 "
            "AND kafka_offset BETWEEN arrayElement({lo:Array(UInt64)}, i) AND arrayElement({hi:Array(UInt64)}, i))")
        params = {"b": began or _EPOCH, "k": [f"{t}/{life}/{p}" for (t, life, p), _, _ in spans],
                  "lo": [lo for _, lo, _ in spans], "hi": [hi for _, _, hi in spans]}
        _, rows = self.store.query(
            "SELECT kafka_topic, kafka_incarnation, kafka_partition, kafka_offset, toString(event_id) "
            f"{outside} ORDER BY 1, 2, 3, 4 LIMIT {MAX_LISTED}", params)
        for topic, life, partition, offset, event_id in rows:
            self._add("inserted", "events", f"{topic}[{partition}] life {life} offset {offset}",
                      f"event {event_id} is in no ledger range: no Kafka record was loaded as it")
        if len(rows) == MAX_LISTED:
            _, counted = self.store.query(f"SELECT count() {outside}", params)
            if int(counted[0][0]) > MAX_LISTED:
                self._add("inserted", "events", "(more)",
                          f"{int(counted[0][0]) - MAX_LISTED:,} more rows in no ledger range")
        _, progress = self.store.query(
            "SELECT kafka_topic, kafka_incarnation, kafka_partition, max(next_offset) "
            f"FROM {self.db}.progress GROUP BY 1, 2, 3")
        loaded_to: dict[tuple[str, int, int], int] = {}
        for topic, life, partition, next_offset in progress:
            key = (str(topic), int(life), int(partition))
            loaded_to[key] = int(next_offset)
            chain = by_partition.get(key)
            if chain and int(next_offset) > chain[-1].last + 1:
                self._add("deleted", "ledger", f"{topic}[{partition}] life {life}",
                          f"loaded up to offset {int(next_offset) - 1}, the ledger only to {chain[-1].last}")
        self._journal(by_partition, loaded_to, began or _EPOCH)

    def _journal(self, by_partition: dict[tuple[str, int, int], list[_Range]],
                 loaded_to: dict[tuple[str, int, int], int], began: datetime) -> None:
        """Every range the consumer planned in its journal (``batches``) since the ledger began, and
        loaded past, ends where a ledger range ends: else it was loaded and its heads are gone."""
        _, planned = self.store.query(
            "SELECT DISTINCT kafka_topic, kafka_incarnation, kafka_partition, first_offset, last_offset "
            f"FROM {self.db}.batches WHERE stream = 'audit' AND planned_at >= {{b:DateTime64(3, 'UTC')}} "
            "ORDER BY 1, 2, 3, 4", {"b": began})
        ends = {key: {r.last for r in chain} for key, chain in by_partition.items()}
        listed = 0
        for topic, life, partition, first, last in planned:
            key = (str(topic), int(life), int(partition))
            if int(last) >= loaded_to.get(key, 0) or int(last) in ends.get(key, set()):
                continue  # not loaded yet (replayed at the next start), or in the ledger
            listed += 1
            if listed <= MAX_LISTED:
                self._add("deleted", "ledger", f"{topic}[{partition}] life {life} offsets {first}-{last}",
                          "planned in the journal and loaded, but no ledger range ends there")

    def _rewrites_beyond_window(self) -> None:
        """Event ids stored twice with different content: PA-016 the consumer could not see (the first
        copy was further back than its window, or in another partition)."""
        _, rows = self.store.query(
            "SELECT toString(event_id), groupArray(concat(kafka_topic, '[', toString(kafka_partition), '] offset ', "
            "toString(kafka_offset))) FROM " + self.db + ".events "
            "WHERE content_hash != toFixedString('', 32) GROUP BY event_id HAVING uniqExact(content_hash) > 1 "
            f"LIMIT {MAX_LISTED}")
        for event_id, places in rows:
            self._add("rewrite", "events", f"event {event_id}",
                      f"stored with different content at {', '.join(sorted(places))} (PA-016)")


    def _emitter_gaps(self) -> None:
        """Per emitter, the numbers never seen: a hole is a finding once the emitter's records after
        it run ``grace`` past the last one before it (they are late, not lost, until then)."""
        _, rows = self.store.query(
            "SELECT emitter, any(service), groupArray((first_seq, last_seq, toUnixTimestamp64Milli(max_occurred_at))), "
            f"sum(records) FROM {self.db}.emitter_seqs FINAL GROUP BY emitter ORDER BY emitter")
        for emitter, service, runs, records in rows:
            if emitter == "":
                self.report.unsequenced += int(records)
                continue
            self.report.emitters += 1
            ordered = sorted((int(a), int(b), int(t)) for a, b, t in runs)
            holes: list[tuple[int, int, int]] = []  # (first missing, last missing, time before the hole)
            reached, before = 0, 0  # the highest number seen so far, and the latest time up to it
            for first, last, at in ordered:
                if first > reached + 1:
                    holes.append((reached + 1, first - 1, before))
                reached, before = max(reached, last), max(before, at)
            latest = max(at for _, _, at in ordered)
            for lo, hi, at in holes:
                if latest - at < self.grace_ms:
                    self.report.open_holes += 1
                    continue
                which = f"seq {lo}" if lo == hi else f"seq {lo}-{hi}"
                self._add("gap", "emitter_seqs", f"emitter {emitter} ({service or 'service unknown'})",
                          f"{which} never reached Kafka (its later records run {(latest - at) // 60000:,} min past)")


class _Rows:
    """The rows that name the offsets ``lo``-``hi`` of one partition, by offset."""

    def __init__(self, v: Verification, topic: str, life: int, partition: int, lo: int, hi: int) -> None:
        self.v = v
        params = {"t": topic, "p": partition, "i": life, "a": lo, "b": hi}
        where = ("WHERE kafka_topic = {t:String} AND kafka_partition = {p:UInt16} AND kafka_incarnation = {i:UInt32} "
                 "AND kafka_offset BETWEEN {a:UInt64} AND {b:UInt64}")
        db, query = v.db, v.store.query
        content = f"SHA256({content_sql()})"
        self.events = self._by_offset(query(
            f"SELECT DISTINCT kafka_offset, {content}, content_hash, checked_version, verdicts_hash, "
            f"formatDateTime(occurred_at, '%Y-%m', 'Asia/Seoul') FROM {db}.events {where}", params)[1])
        self.rewrites = self._by_offset(query(
            f"SELECT DISTINCT kafka_offset, {content}, content_hash, checked_version, verdicts_hash, "
            f"formatDateTime(occurred_at, '%Y-%m', 'Asia/Seoul') FROM {db}.rewrites {where}", params)[1])
        self.repeats = self._by_offset(query(
            f"SELECT DISTINCT kafka_offset, content_hash FROM {db}.repeats {where}", params)[1])
        self.dead = self._by_offset(query(
            f"SELECT DISTINCT kafka_offset, kind, reason FROM {db}.dead_letters {where}", params)[1])
        verdicts: dict[int, list[tuple[str, str, str, str]]] = defaultdict(list)
        for offset, *verdict in query(
                f"SELECT DISTINCT kafka_offset, rule, severity, message, policy_version FROM {db}.violations {where} "
                "AND rule NOT IN {later:Array(String)}", {**params, "later": list(LATER_RULES)})[1]:
            verdicts[int(offset)].append(tuple(map(str, verdict)))  # type: ignore[arg-type]
        self.verdicts = verdicts
        self.months: set[str] = set()

    @staticmethod
    def _by_offset(rows: Any) -> dict[int, list[tuple[Any, ...]]]:
        out: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for offset, *rest in rows:
            out[int(offset)].append(tuple(rest))
        return out

    def record(self, offset: int, place: str, changed: list[int]) -> tuple[bytes, int]:
        """The offset's record as the store holds it now, and its kind's index in the counts (naming
        what is wrong with it on the way)."""
        where = f"{place} offset {offset}"
        found = [(name, rows) for name, rows in (("events", self.events.get(offset)),
                                                  ("rewrites", self.rewrites.get(offset)),
                                                  ("repeats", self.repeats.get(offset)),
                                                  ("dead_letters", self.dead.get(offset))) if rows]
        add = self.v._add
        if not found:
            return RecordKind.ABSENT, 4
        if len(found) > 1:
            add("inserted", "/".join(name for name, _ in found), where, "rows of more than one kind at one offset")
        name, rows = found[0]
        if len(rows) > 1:
            add("inserted", name, where, f"{len(rows)} different rows at one offset")
        row = rows[0]
        if name in ("events", "rewrites"):
            computed, loaded, checked, judged, month = row
            computed, loaded, judged = _bytes(computed), _bytes(loaded), _bytes(judged)
            self.months.add(str(month))
            if computed != loaded:
                add("changed", name, where, "its content is not what was loaded")
                if name == "events":
                    changed.append(offset)
            verdicts = verdicts_hash(self.verdicts.get(offset, ()))
            if verdicts != judged:
                add("changed" if self.verdicts.get(offset) else "deleted", "violations", where,
                    "its verdicts are not those it was loaded with (a row deleted, added or changed)")
            kind = RecordKind.EVENT if name == "events" else RecordKind.REWRITE
            return event_record(kind, computed, str(checked), verdicts), 0 if name == "events" else 3
        if name == "repeats":
            return event_record(RecordKind.REPEAT, _bytes(row[0])), 2
        return dead_letter_record(str(row[0]), str(row[1])), 1


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("latin-1")
    raise TypeError(f"not bytes: {type(value).__name__}")

