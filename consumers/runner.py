"""The audit consumer's loop: poll, cut, process, plan, load, publish, commit.

    consumer = AuditConsumer(ConsumerConfig(bootstrap="127.0.0.1:9092"), store, policy)
    consumer.run(stop_event)          # until stop_event is set, or idle with --until-idle

Per polled batch, per partition (see :mod:`.sink` for why this order makes loads exactly once):
records below the next expected offset are dropped (re-deliveries); the rest are cut into ranges,
at the journal's boundaries while a crashed batch is being replayed; each range is processed by
its partition's checker (:mod:`.batch`) and planned in the journal; the poll's ranges are loaded
together, one insert per table, and a replayed range alone, with what of it is missing; dead letters
and violations are published and flushed; progress is recorded; offsets are committed. Then the
bulk stage (PA-012) scans what became complete. After an empty poll, a member whose partitions are
all caught up says so in ``caught_up`` (every ``attest_every_s``), which is how a bulk stage in
another process knows the tail of the stream is complete.

Loading is pipelined: a batch's plan, load, publish and progress run on a loader thread while the
loop polls and processes the next batch (the engine runs an insert without holding Python's GIL,
so the two overlap). At most one batch is in flight; it is *settled* (offsets
committed, counted) on the loop's thread before the next one is handed over, when a poll comes back
empty, and before exit. A subject whose state must be loaded from
ClickHouse while rows of it are still in flight waits for that load first; a revocation waits for
the batch in flight, so the partition's next owner finds its range in the journal.

On assignment (start or rebalance) each partition gets a checker and the journal's unfinished
ranges to replay. The checker holds at most ``max_subjects`` subjects: before a range is checked,
the subjects it names that are not held are loaded from ``subject_state`` as of the range's first
offset (for all the partitions of a poll in one query), and before each batch is processed the
least recently seen beyond the limit are dropped (with ``max_subjects=None`` the partition's whole
state is restored at assignment instead). On
revocation its state is dropped: the next owner loads it from ClickHouse.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial

from privaudit.backoff import with_backoff
from privaudit.bus import ClientName, Record, make_consumer, make_producer, publish
from privaudit.bus.clients import TP
from privaudit.checker import Checker, CheckerState
from privaudit.errors import CommitRefused, RegistryUnavailable
from privaudit.policy import Policy
from privaudit.schemas import Codec, SchemaSet
from privaudit.schemas.schema_registry import SchemaRegistry
from privaudit.settings import TOPIC_DLQ, TOPIC_EVENTS, TOPIC_VIOLATIONS
from privaudit.store import Store

from .batch import Decoded, PartitionBatch, check, decode
from .bulk import BulkStage
from .metrics import Metrics
from .sink import Sink

log = logging.getLogger("privaudit.consumer")


@dataclass(frozen=True)
class ConsumerConfig:
    bootstrap: str
    group: str = "privaudit-audit"
    client: ClientName = "kafka-python"
    topic: str = TOPIC_EVENTS
    max_records: int = 20_000  # records gathered over polls before one batch is processed
    linger_s: float = 0.25  # ... or this long after the first record of the batch
    poll_timeout_s: float = 0.5
    bulk_every_s: float = 1.0  # the bulk stage scans at most this often
    bulk_idle_s: float = 2.0  # caught up and idle this long: the bulk stage scans to the end
    # A member caught up and idle says so in ``caught_up`` this often; the bulk stage trusts what
    # was said within three times this (a member that died stops counting then).
    attest_every_s: float = 2.0
    session_timeout_ms: int = 6000
    name: str = "consumer-1"
    # Python's cyclic collector, at its default threshold of 700 allocations, runs hundreds of
    # times per batch and walks the checker state each time: measured, 36 -> 23 us per event
    # processed with 50,000. The consumer's objects are acyclic records, so fewer passes free the
    # same memory. ``None`` leaves the interpreter's setting alone (for a host that tunes it).
    gc_threshold: int | None = 50_000
    # Checker state held per partition: at most this many subjects, least recently seen dropped
    # first and reloaded from ``subject_state`` when they come back (None: hold every subject, all
    # restored at assignment). Bounds the consumer's memory whatever the population.
    max_subjects: int | None = 50_000
    # The Confluent wire format's schema ids, when a registry assigned others than the shipped table
    # (a JSON file {"<id>": "<type>@<version>"}; None: the shipped one, unless a registry is given).
    confluent_ids: str | None = None
    # A schema registry's URL, asked for the ids no table names (the shipped table is then not used).
    schema_registry: str | None = None


def _codec(config: ConsumerConfig) -> Codec:
    if config.confluent_ids is None and config.schema_registry is None:
        return Codec()
    registry = SchemaRegistry(config.schema_registry) if config.schema_registry else None
    return Codec(SchemaSet(confluent_ids=config.confluent_ids, registry=registry))


class HeldSubjects:
    """The subjects whose state one partition's checker holds, least recently seen first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._order: OrderedDict[str, None] = OrderedDict()

    def see(self, subjects: set[str]) -> set[str]:
        """Mark ``subjects`` as just seen; those not held before (to be loaded)."""
        order, missing = self._order, set()
        for subject in subjects:
            if subject in order:
                order.move_to_end(subject)
            else:
                order[subject] = None
                missing.add(subject)
        return missing

    def evict(self) -> list[str]:
        """Drop the least recently seen beyond the limit (never those of the batch just seen,
        as long as the limit is above a batch's subjects); the dropped ones."""
        order, gone = self._order, []
        while len(order) > self.limit:
            gone.append(order.popitem(last=False)[0])
        return gone


@dataclass
class InFlight:
    """The batch on the loader thread: its partition ranges, the records they came from, when its
    handling began (for the batch-time metric), and each partition's checker then (a partition
    given a new one since was reassigned, and its new assignment replays the range: see
    :meth:`AuditConsumer.settle`)."""

    future: Future[None]
    batches: list[PartitionBatch]
    records: list[Record]
    started: float
    owners: dict[TP, Checker]

    def state_subjects(self, tp: TP) -> set[str]:
        return {s for b in self.batches if (b.topic, b.partition) == tp for s in b.state["subject_id"]}


@dataclass
class Totals:
    records: int = 0
    events: int = 0
    violations: int = 0
    dead: int = 0
    batches: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    lag: int | None = None
    last_record_at: float = field(default_factory=time.monotonic)
    first_record_wall: float | None = None  # time.time() of the first record (throughput across processes)


class AuditConsumer:
    def __init__(
        self,
        config: ConsumerConfig,
        store: Store,
        policy: Policy,
        *,
        codec: Codec | None = None,
        metrics: Metrics | None = None,
        bulk: BulkStage | None = None,
        after_batch: Callable[[AuditConsumer], None] | None = None,
    ) -> None:
        self.config = config
        if config.gc_threshold is not None:
            current, older, oldest = gc.get_threshold()
            gc.set_threshold(max(config.gc_threshold, current), older, oldest)
        self.policy = policy
        self.codec = codec or _codec(config)
        self.sink = Sink(store)
        self.metrics = metrics or Metrics()
        self.bulk = bulk
        self.after_batch = after_batch
        self.covered: Callable[[], bool] | None = None  # set by the host of several members
        self.totals = Totals()
        self._stop = threading.Event()  # run()'s: ends a wait for the broker
        self._checkers: dict[TP, Checker] = {}
        self._replay: dict[TP, deque[tuple[int, int]]] = {}
        self._buffer: dict[TP, list[Record]] = {}
        self._next: dict[TP, int] = {}
        self._pending: set[TP] = set()
        self._held: dict[TP, HeldSubjects] = {}
        self._next_bulk = 0.0
        self._next_attest = 0.0
        self._next_tail = 0.0
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"privaudit-{config.name}-load")
        self._inflight: InFlight | None = None
        self.producer = make_producer(config.client, config.bootstrap)
        self.consumer = make_consumer(
            config.client, config.bootstrap, config.group, [config.topic],
            on_assign=self._assigned, on_revoke=self._revoked,
            session_timeout_ms=config.session_timeout_ms, client_id=f"privaudit-{config.name}",
        )

    # -- rebalance ------------------------------------------------------------------------

    def _assigned(self, tps: set[TP]) -> None:
        """Runs on the client's IO thread (kafka-python 3), where blocking calls are refused: only
        note the partitions; :meth:`_start_assigned` sets them up on the loop's thread."""
        self._pending |= tps

    def _start_assigned(self) -> set[TP]:
        """The partitions started now."""
        pending, self._pending = self._pending, set()
        for tp in pending:
            committed = self.consumer.begin(tp)
            replay = self.sink.planned_ranges(tp[0], tp[1], committed)
            self._replay[tp] = deque(replay)
            if self.config.max_subjects is None:
                state = self.sink.restore_state(tp[0], tp[1], committed)
            else:  # loaded subject by subject, as batches name them
                state = CheckerState()
                self._held[tp] = HeldSubjects(max(self.config.max_subjects, 1))
            self._checkers[tp] = Checker(self.policy, state, bulk_access=False)
            self._next[tp] = committed
            self._buffer[tp] = []
            log.info("%s: assigned %s:%d at offset %d (%d range(s) to replay)", self.config.name, *tp, committed, len(replay))
        return pending

    def _revoked(self, tps: set[TP]) -> None:
        # The next owner reads the journal: let the batch in flight finish writing it and its rows
        # first (it is committed, for the partitions kept since it was handed over, when it is settled).
        inflight = self._inflight
        if inflight is not None:
            wait([inflight.future])
        self._pending -= tps
        for tp in tps:
            for table in (self._checkers, self._replay, self._buffer, self._next, self._held):
                table.pop(tp, None)  # type: ignore[attr-defined]
            log.info("%s: revoked %s:%d", self.config.name, *tp)

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, idle_exit_s: float | None = None) -> Totals:
        self._stop = stop
        try:
            while not stop.is_set():
                records = self.gather()
                if records:
                    self.totals.last_record_at = time.monotonic()
                    if self.totals.first_record_wall is None:
                        self.totals.first_record_wall = time.time()
                    self.handle(records)
                    continue
                self.settle()
                if idle_exit_s is not None and self.idle(idle_exit_s):
                    break
                self._when_idle()
            self.settle()  # SIGTERM: the batch in flight is loaded and committed before exit
        finally:
            self.close()
        return self.totals

    def _when_idle(self) -> None:
        """After an empty poll: say so in ``caught_up`` if caught up, and let the bulk stage scan
        to the end if every partition is caught up: all owned by this member, or each said to be
        by its owner (other members of this process say so too). Everything produced is then
        loaded, and what comes later is later in time (the same assumption as the watermark's).
        That this process owns every partition (``covered``) is not enough: another member of it
        may still be loading records older than what this one loaded last."""
        config, now = self.config, time.monotonic()
        caught_up = self.caught_up(config.bulk_idle_s)
        if caught_up and now >= self._next_attest:
            idle_since = datetime.now(timezone.utc) - timedelta(seconds=now - self.totals.last_record_at)
            self.sink.attest({tp: (n, self.consumer.highwater(tp) or 0) for tp, n in self._next.items()},
                             idle_since, config.name)
            self._next_attest = now + config.attest_every_s
        if self.bulk is None or now < self._next_tail:
            return
        self._next_tail = now + config.bulk_every_s
        alone = len({p for t, p in self.owned if t == config.topic}) >= self.bulk.partitions
        if (caught_up and alone) or self.bulk.all_caught_up(config.bulk_idle_s, 3 * config.attest_every_s):
            self.bulk.run_once(final=True)

    def gather(self) -> list[Record]:
        """Poll until ``max_records`` are in hand or ``linger_s`` passed since the first one:
        fewer, larger inserts (each costs milliseconds in ClickHouse whatever its size)."""
        config = self.config
        records = self._started([], self.consumer.poll(config.poll_timeout_s, config.max_records))
        if not records:
            return records
        deadline = time.monotonic() + config.linger_s
        while len(records) < config.max_records and (left := deadline - time.monotonic()) > 0:
            more = self.consumer.poll(min(left, config.poll_timeout_s), config.max_records - len(records))
            records = self._started(records, more)  # a rebalance inside the linger
            if not more:
                break
        return records

    def _started(self, held: list[Record], polled: list[Record]) -> list[Record]:
        """``held`` and then ``polled``, after starting the partitions the poll assigned, less what
        is stale of those: what was held of them came from their previous assignment, and what the
        poll returned of them too if the client was moved to the committed offset
        (``rewinds_on_begin``). Both are delivered again from there, where a replayed range must be
        read from its start."""
        if not self._pending:
            held.extend(polled)
            return held
        started = self._start_assigned()
        kept = [r for r in held if (r.topic, r.partition) not in started]
        kept += [r for r in polled if (r.topic, r.partition) not in started] if self.consumer.rewinds_on_begin else polled
        return kept

    def idle(self, seconds: float) -> bool:
        """:meth:`caught_up`, and (``covered``) the group's partitions all owned by this process: a
        member killed without leaving still holds its partitions until its session times out, and
        nobody reads them."""
        return self.caught_up(seconds) and (self.covered is None or self.covered())

    def caught_up(self, seconds: float) -> bool:
        """No record for ``seconds``, partitions assigned, everything fetched loaded, and none
        behind its high watermark."""
        if time.monotonic() - self.totals.last_record_at < seconds or not self._next or self._pending:
            return False
        return self._inflight is None and self._update_lag() == 0 and not any(self._buffer.values())

    @property
    def in_flight(self) -> int:
        """Records handed to the loader and not settled yet."""
        return sum(b.size for b in self._inflight.batches) if self._inflight is not None else 0

    @property
    def owned(self) -> set[TP]:
        return set(self._next)

    def handle(self, records: list[Record]) -> None:
        """Process ``records`` and hand the result to the loader (settling the batch before)."""
        started = time.perf_counter()
        # Trim the held subjects before processing, never between a range's processing and its
        # hand-over: a subject dropped here and named again is reloaded from what is loaded, after
        # waiting for the batch in flight if it has rows of it (:meth:`_load_subjects`).
        for tp, held in self._held.items():
            self._checkers[tp].state.forget(held.evict())
        for r in records:
            tp = (r.topic, r.partition)
            buffer = self._buffer.get(tp)
            if buffer is None:
                continue  # not (or no longer) ours
            if r.offset > (buffer[-1].offset if buffer else self._next[tp] - 1):
                buffer.append(r)  # anything at or below is a re-delivery of what we hold or processed
        work = []
        for tp, buffer in self._buffer.items():
            for chunk, replayed in self._cut(tp, buffer):
                # a schema registry that cannot answer is waited for: the chunk is decoded again
                work.append((tp, replayed, with_backoff(
                    partial(decode, chunk, self.codec), retry_on=RegistryUnavailable, stop=self._stop,
                    what="a schema registry lookup", on_retry=self.metrics.registry_retries.inc)))
                self._next[tp] = chunk[-1].offset + 1
        if self._held:
            self._load_subjects(work)
        batches, owners = [], {}
        for tp, replayed, decoded in work:
            owners[tp] = checker = self._checkers[tp]
            batch = check(decoded, checker)
            batch.replayed = replayed
            batches.append(batch)
        if not batches:
            return
        self.settle()
        for b in batches:  # read here: the client is not the loader thread's to call
            b.high_watermark = self.consumer.highwater((b.topic, b.partition)) or 0
        future = self._loader.submit(self._store, batches, records)
        self._inflight = InFlight(future, batches, records, started, owners)

    def _store(self, batches: list[PartitionBatch], records: list[Record]) -> None:
        """On the loader thread: journal, load, publish, progress (see :mod:`.sink`)."""
        self.sink.plan(batches)
        fresh = [b for b in batches if not b.replayed]
        if fresh:
            self.sink.load(fresh)
        for batch in batches:
            if batch.replayed:
                self.sink.repair(batch)
        self._publish(batches)
        self.sink.progress(batches)
        self.loaded(records)

    def loaded(self, records: list[Record]) -> None:
        """Called on the loader thread once ``records`` are queryable and their violations
        published (a hook: the benchmark notes latencies here)."""

    def settle(self) -> None:
        """Finish the batch in flight: wait for its load (a failure is raised here), commit its
        offsets for the partitions still ours under the same assignment, count those. A partition
        revoked meanwhile, or revoked and given back (a rebalance), starts again from the committed
        offset and replays the range from the journal, so it is neither committed nor counted here."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        inflight.future.result()
        batches = [b for b in inflight.batches
                   if self._checkers.get((b.topic, b.partition)) is inflight.owners[(b.topic, b.partition)]]
        try:
            self.consumer.commit({(b.topic, b.partition): b.last_offset + 1 for b in batches})
        except CommitRefused as exc:
            # The group moved on (this member was dropped, e.g. after waiting long for the store):
            # the next poll rejoins it, and whoever owns these partitions then replays these loaded
            # ranges from the journal (repaired: nothing stored twice) and counts them.
            log.warning("%s: %s; the partitions' next owner replays these ranges from the journal", self.config.name, exc)
            return
        self._count(batches, time.perf_counter() - inflight.started)
        if self.bulk is not None and time.monotonic() >= self._next_bulk:
            self.bulk.run_once()
            self._next_bulk = time.monotonic() + self.config.bulk_every_s
        if self.after_batch is not None:
            self.after_batch(self)

    def _load_subjects(self, work: list[tuple[TP, bool, Decoded]]) -> None:
        """Before the poll's ranges are checked: the state of the subjects they name that their
        partition's checker does not hold, as of the partition's first range, from ClickHouse, in
        one query per topic. (A subject first named in a partition's later range has no row
        between the two ranges: it would be named in the earlier one.)"""
        wanted: dict[TP, tuple[int, set[str]]] = {}
        for tp, _, decoded in work:
            held = self._held.get(tp)
            missing = held.see({e.subject_id for _, e in decoded.events}) if held is not None else None
            if missing:
                before, subjects = wanted.get(tp, (decoded.first_offset, set()))
                wanted[tp] = (before, subjects | missing)
        if not wanted:
            return
        inflight = self._inflight
        if inflight is not None and any(subjects & inflight.state_subjects(tp) for tp, (_, subjects) in wanted.items()):
            wait([inflight.future])  # their latest rows are still being loaded
        for topic in {tp[0] for tp in wanted}:
            self.sink.restore_subjects(topic, {p: w for (t, p), w in wanted.items() if t == topic},
                                       {p: self._checkers[(t, p)].state for (t, p) in wanted if t == topic})

    def _cut(self, tp: TP, buffer: list[Record]) -> list[tuple[list[Record], bool]]:
        """Take the ranges ready to process off the front of ``buffer``, each with whether it
        replays a range planned before."""
        chunks = []
        replay = self._replay.get(tp)
        while buffer:
            replayed = bool(replay)
            if replay:
                first, last = replay[0]
                if buffer[-1].offset < last:
                    break  # the replayed range is not all here yet
                end = next(i for i, r in enumerate(buffer) if r.offset >= last) + 1
                replay.popleft()
            else:
                end = len(buffer)
            chunks.append((buffer[:end], replayed))
            del buffer[:end]
        return chunks

    def _publish(self, batches: list[PartitionBatch]) -> None:
        """Dead letters and violations to Kafka, flushed; sent again while the broker refuses them
        (:func:`privaudit.bus.publish`)."""
        messages = [(TOPIC_DLQ, d.record.value, d.record.key, d.headers()) for b in batches for d in b.dead]
        messages += [(TOPIC_VIOLATIONS, value, key, None) for b in batches for key, value in b.published]
        publish(self.producer, messages, stop=self._stop, on_retry=self.metrics.publish_retries.inc,
                what=f"{self.config.name}: publishing {len(messages)} dead letter(s) and violation(s)")

    def _count(self, batches: list[PartitionBatch], seconds: float) -> None:
        t, m = self.totals, self.metrics
        t.batches += 1
        m.batch_seconds.observe(seconds)
        for b in batches:
            t.records += b.size
            m.records.inc(b.size)
            loaded = len(b.events["event_id"])
            t.events += loaded
            for kind in set(b.events["type"]):
                m.events.labels(kind).inc(b.events["type"].count(kind))
            for rule, n in b.counts.items():
                t.by_rule[rule] = t.by_rule.get(rule, 0) + n
                t.violations += n
                m.violations.labels(rule).inc(n)
            for dead in b.dead:
                m.dlq.labels(dead.kind).inc()
            t.dead += len(b.dead)
        self._update_lag()

    def _update_lag(self) -> int | None:
        """Records behind the high watermarks; None while a partition's is unknown (no fetch
        response yet since it was assigned): unknown is not caught up."""
        total: int | None = 0
        for tp, position in self._next.items():
            high = self.consumer.highwater(tp)
            if high is None:
                total = None
                continue
            lag = max(0, high - position)
            self.metrics.lag.labels(str(tp[1])).set(lag)
            if total is not None:
                total += lag
        self.totals.lag = total
        return total

    def close(self) -> None:
        self._loader.shutdown(wait=True)  # an insert under way is finished, never cut off
        try:
            self.consumer.close()
        finally:
            self.producer.close(10)
