"""The audit consumer's loop: poll, cut, process, hand over, settle.

    consumer = AuditConsumer(ConsumerConfig(bootstrap="127.0.0.1:9092"), store, policy)
    consumer.run(stop_event)          # until stop_event is set, or idle with --until-idle

Per polled batch, per partition (:class:`~.partition.Partition`): records below the next expected
offset are dropped (re-deliveries); the rest are **cut** into ranges, at the journal's boundaries
while a crashed batch is being replayed; each range is **processed** by its partition's checker
(:mod:`.batch`). The poll's ranges are then **handed over** to the loader thread, where the sink
plans, loads (or repairs), publishes and records progress (:mod:`.sink`, which says why this order
makes loads exactly once). The batch is **settled** on the loop's thread (offsets committed,
counted) before the next one is handed over, when a poll comes back empty, and before exit; then the
bulk stage (PA-012) scans what became complete. After an empty poll, a member whose partitions are
all caught up **attests** it in ``caught_up`` (every ``attest_every_s``), which is how a bulk stage
in another process knows the tail of the stream is complete.

At most one batch is in flight: the engine runs an insert without holding Python's GIL, so loading
one batch overlaps processing the next. A subject whose state must be loaded from ClickHouse while
rows of it are still in flight waits for that load first; a revocation waits for the batch in
flight, so the partition's next owner finds its range in the journal.

On assignment (start or rebalance) each partition gets a checker and the journal's unfinished
ranges to replay. The checker **holds** at most ``max_subjects`` subjects: before a range is
checked, the subjects it names that are not held are loaded from ``subject_state`` as of the range's
first offset (for all the partitions of a poll in one query), and before each batch is processed
the least recently seen beyond the limit are dropped (with ``max_subjects=None`` the partition's
whole state is restored at assignment instead). On revocation its state is dropped: the next owner
loads it from ClickHouse.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from privaudit.backoff import with_backoff
from privaudit.bus import TP, Record, make_consumer, make_producer
from privaudit.checker import Checker, CheckerState
from privaudit.errors import BrokerError, CommitRefused, RegistryUnavailable, StoreUnavailable
from privaudit.evidence import Signer
from privaudit.policy import Policy
from privaudit.schemas import Codec
from privaudit.store import Statements

from .batch import Decoded, PartitionBatch, check, decode
from .bulk import BulkStage
from .config import ConsumerConfig
from .lives import Lives
from .metrics import Metrics, RelayMetrics
from .partition import HeldSubjects, Partition
from .sink import Sink

log = logging.getLogger("privaudit.consumer")


@dataclass
class InFlight:
    """The batch on the loader thread: its partition ranges, the records they came from, when its
    handling began (for the batch-time metric), and the partitions it came from (one given a new
    :class:`Partition` since was reassigned, and its new assignment replays the range: see
    :meth:`AuditConsumer.settle`)."""

    future: Future[None]
    batches: list[PartitionBatch]
    records: list[Record]
    started: float
    owners: dict[TP, Partition]

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

    def add(self, batches: list[PartitionBatch]) -> None:
        self.batches += 1
        for b in batches:
            self.records += b.size
            self.events += len(b.events["event_id"])
            for rule, n in b.counts.items():
                self.by_rule[rule] = self.by_rule.get(rule, 0) + n
                self.violations += n
            self.dead += len(b.dead)


class AuditConsumer:
    def __init__(
        self,
        config: ConsumerConfig,
        store: Statements,
        policy: Policy,
        *,
        codec: Codec | None = None,
        metrics: Metrics | RelayMetrics | None = None,
        bulk: BulkStage | None = None,
        after_batch: Callable[[AuditConsumer], None] | None = None,
    ) -> None:
        self.config = config
        if config.gc_threshold is not None:
            current, older, oldest = gc.get_threshold()
            gc.set_threshold(max(config.gc_threshold, current), older, oldest)
        self.policy = policy
        self.codec = codec or config.codec()
        self.metrics = metrics or Metrics()
        self.bulk = bulk
        self.after_batch = after_batch
        self.covered: Callable[[], bool] | None = None  # set by the host of several members
        self.totals = Totals()
        self._stop = threading.Event()  # run()'s: ends a wait for the broker or a schema registry
        self.partitions: dict[TP, Partition] = {}
        self._assigned_now: set[TP] = set()  # noted by the client's callback, started on the loop's thread
        self._next_bulk = 0.0
        self._next_attest = 0.0
        self._next_tail = 0.0
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"privaudit-{config.name}-load")
        self._inflight: InFlight | None = None
        self.producer = make_producer(config.client, config.bootstrap)
        self._trouble_at = 0.0  # when the broker last failed a call (monotonic): not idle for a while after
        signer = Signer.from_pem(config.ledger_key_pem, "the ledger key") if config.ledger_key_pem else None
        self.sink = Sink(store, self.producer, stop=self._stop, on_publish_retry=self._publish_retry, name=config.name,
                         signer=signer)
        self.consumer = make_consumer(
            config.client, config.bootstrap, config.group, [config.topic],
            on_assign=self._assigned, on_revoke=self._revoked,
            session_timeout_ms=config.session_timeout_ms, client_id=f"privaudit-{config.name}",
        )
        self.lives = Lives(self.sink, self.consumer.topic_id, config.name)
        self._read_to: dict[TP, int] = {}  # past the last offset polled of each partition
        self._renewing: dict[TP, int] = {}  # partitions whose next life begins with the next batch
        self._carry: list[Record] = []  # polled when a gather broke off for a new life: the next batch's
        self._next_life_check = time.monotonic() + config.life_check_s

    # -- rebalance ------------------------------------------------------------------------

    def _assigned(self, tps: set[TP]) -> None:
        """Runs on the client's IO thread (kafka-python 3), where blocking calls are refused: only
        note the partitions; :meth:`_start_assigned` sets them up on the loop's thread."""
        self._assigned_now |= tps

    def _start_assigned(self) -> set[TP]:
        """The partitions started now, each in the topic's current life (see :mod:`.lives`)."""
        pending, self._assigned_now = self._assigned_now, set()
        lives: dict[str, int] = {}
        for tp in sorted(pending):
            topic, number = tp
            if topic not in lives:
                lives[topic] = self.lives.current(topic)
            life = lives[topic]
            committed = self.consumer.begin(tp)
            self._read_to.pop(tp, None)  # read again from where it starts
            last = self.sink.partition_life(topic, number)
            if last is not None and last[0] < life and committed > 0:
                # the group's offset was the old life's: this life is read from its start
                log.warning("%s: %s:%d is read from its start in life %d of the topic (the group's offset %d "
                            "was the last life's)", self.config.name, *tp, life, committed)
                self.consumer.seek(tp, 0)
                committed = 0
            self.partitions[tp] = self._partition(tp, committed, life)
        return pending

    def _partition(self, tp: TP, start: int, life: int) -> Partition:
        """A partition started at ``start`` in life ``life``: its checker, and the journal's ranges
        of that life to replay."""
        replay = self.sink.planned_ranges(tp[0], tp[1], start, life)
        held = None
        if self.config.max_subjects is None:
            state = self.sink.restore_state(tp[0], tp[1], start, life)
        else:  # loaded subject by subject, as batches name them
            state = CheckerState()
            held = HeldSubjects(max(self.config.max_subjects, 1))
        checker = Checker(self.policy, state, bulk_access=False)
        seen = self.sink.restore_seen(tp[0], tp[1], life, start, self.config.dedup_window)
        log.info("%s: assigned %s:%d at offset %d of life %d (%d range(s) to replay, %d event id(s) remembered)",
                 self.config.name, *tp, start, life, len(replay), len(seen))
        return Partition(tp, checker, start, deque(replay), held, life, seen=seen)

    def _new_lives(self, polled: list[Record]) -> bool:
        """Note the partitions whose topic began a new life (:mod:`.lives`) as of this poll: the
        topic has a new id (in the client's metadata at every poll; asked every ``life_check_s``),
        or its log ends below what was read of it. True when any did: they are read again from
        offset 0, in the new life (the poll's records of them are not taken: they come again)."""
        read_to = self._read_to
        for r in polled:
            if r.offset >= read_to.get((r.topic, r.partition), 0):
                read_to[(r.topic, r.partition)] = r.offset + 1
        before = len(self._renewing)
        due = time.monotonic() >= self._next_life_check
        if due:
            self._next_life_check = time.monotonic() + self.config.life_check_s
        for topic in {tp[0] for tp in self.partitions}:
            seen = self.consumer.known_topic_id(topic)
            if due or self.lives.moved(topic, seen):
                life = self.lives.current(topic, seen if self.lives.moved(topic, seen) else None)
                for tp, partition in self.partitions.items():
                    if tp[0] == topic and partition.incarnation < life:
                        self._renewing.setdefault(tp, life)
        for tp, partition in self.partitions.items():
            high, read = self.consumer.highwater(tp), max(read_to.get(tp, 0), partition.next_offset)
            if tp not in self._renewing and high is not None and high < read:
                life = self.lives.after(tp, partition.incarnation,
                                        f"the log of partition {tp[1]} ends at {high}, below offset {read} read of it")
                log.warning("%s: %s:%d's log ends at offset %d, below the %d read of it: the topic was re-created "
                            "or its broker came back empty; it is read again from its start, as life %d",
                            self.config.name, *tp, high, read, life)
                self._renewing[tp] = life
        return len(self._renewing) > before

    def _not_renewing(self, records: list[Record]) -> list[Record]:
        return [r for r in records if (r.topic, r.partition) not in self._renewing]

    def _renew(self) -> None:
        """Start the partitions noted by :meth:`_new_lives` in their new life, from offset 0 (what
        was gathered of their old one went with the batch before; it settles without a commit, as
        the group's offsets are the new life's)."""
        for tp, life in self._renewing.items():
            if tp in self.partitions:
                self.consumer.seek(tp, 0)
                self._read_to.pop(tp, None)
                self.partitions[tp] = self._partition(tp, 0, life)
        self._renewing.clear()

    def _revoked(self, tps: set[TP]) -> None:
        # The next owner reads the journal: let the batch in flight finish writing it and its rows
        # first (it is committed, for the partitions kept since it was handed over, when it is settled).
        inflight = self._inflight
        if inflight is not None:
            wait([inflight.future])
        self._assigned_now -= tps
        for tp in tps:
            self.partitions.pop(tp, None)
            log.info("%s: revoked %s:%d", self.config.name, *tp)

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, idle_exit_s: float | None = None) -> Totals:
        self._stop = self.sink.stop = stop
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
        except (BrokerError, StoreUnavailable, RegistryUnavailable) as exc:
            if not stop.is_set():
                raise
            # Told to stop while waiting for a dependency: stopped as asked, nothing lost. What was
            # loaded and not committed is replayed from the journal by the next run (loaded once).
            log.warning("%s: stopped while waiting: %s", self.config.name, exc)
        finally:
            self.close()
        return self.totals

    def _when_idle(self) -> None:
        """After an empty poll: attest it in ``caught_up`` if caught up, and let the bulk stage
        scan to the end if every partition is caught up: all owned by this member, or each attested
        by its owner (other members of this process attest too). Everything produced is then
        loaded, and what comes later is later in time (the same assumption as the watermark's).
        That this process owns every partition (``covered``) is not enough: another member of it
        may still be loading records older than what this one loaded last."""
        config, now = self.config, time.monotonic()
        caught_up = self.caught_up(config.bulk_idle_s)
        if caught_up and now >= self._next_attest:
            idle_since = datetime.now(UTC) - timedelta(seconds=now - self.totals.last_record_at)
            ends = {tp: (p.next_offset, self.consumer.highwater(tp) or 0, p.incarnation)
                    for tp, p in self.partitions.items()}
            self.sink.attest(ends, idle_since, config.name)
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
        self._renew()
        polled, self._carry = self._carry + self._poll(config.poll_timeout_s, config.max_records), []
        if self._new_lives(polled):
            polled = self._not_renewing(polled)
            self._renew()  # nothing of the old lives is held
        records = self._started([], polled)
        if not records:
            return records
        deadline = time.monotonic() + config.linger_s
        while len(records) < config.max_records and (left := deadline - time.monotonic()) > 0:
            more = self._poll(min(left, config.poll_timeout_s), config.max_records - len(records))
            if self._new_lives(more):  # what is held is the old lives': handled first, under them
                self._carry = self._not_renewing(more)
                break
            records = self._started(records, more)  # a rebalance inside the linger
            if not more:
                break
        return records

    def _poll(self, timeout_s: float, max_records: int) -> list[Record]:
        """A poll; while the broker cannot be reached (the client gives up on it), waited for with
        backoff, one warning a wait, never a reason to stop: nothing is read or committed meanwhile."""
        return with_backoff(partial(self.consumer.poll, timeout_s, max_records), retry_on=BrokerError,
                            stop=self._stop, what=f"{self.config.name}: reading from the broker",
                            on_retry=self._troubled)

    def _troubled(self) -> None:
        """The broker failed a call: what the client knows of the partitions' ends may be stale (a
        broker back empty), so idleness is counted again from now (:meth:`caught_up`)."""
        self._trouble_at = time.monotonic()

    def _publish_retry(self) -> None:
        self._troubled()
        self.metrics.publish_retries.inc()

    def _started(self, held: list[Record], polled: list[Record]) -> list[Record]:
        """``held`` and then ``polled``, after starting the partitions the poll assigned, less what
        is stale of those: what was held of them came from their previous assignment, and what the
        poll returned of them too if the client was moved to the committed offset
        (``rewinds_on_begin``). Both are delivered again from there, where a replayed range must be
        read from its start."""
        if not self._assigned_now:
            held.extend(polled)
            return held
        started = self._start_assigned()
        kept = [r for r in held if (r.topic, r.partition) not in started]
        if self.consumer.rewinds_on_begin:
            polled = [r for r in polled if (r.topic, r.partition) not in started]
        kept += polled
        return kept

    def idle(self, seconds: float) -> bool:
        """:meth:`caught_up`, and (``covered``) the group's partitions all owned by this process: a
        member killed without leaving still holds its partitions until its session times out, and
        nobody reads them."""
        return self.caught_up(seconds) and (self.covered is None or self.covered())

    def caught_up(self, seconds: float) -> bool:
        """No record and no broker failure for ``seconds``, partitions assigned, everything fetched
        loaded, and none behind its high watermark."""
        quiet_since = max(self.totals.last_record_at, self._trouble_at)
        if time.monotonic() - quiet_since < seconds or not self.partitions or self._assigned_now:
            return False
        return (self._inflight is None and self._update_lag() == 0
                and not any(p.buffer for p in self.partitions.values()))

    @property
    def in_flight(self) -> int:
        """Records handed to the loader and not settled yet."""
        return sum(b.size for b in self._inflight.batches) if self._inflight is not None else 0

    @property
    def owned(self) -> set[TP]:
        return set(self.partitions)

    def handle(self, records: list[Record]) -> None:
        """Cut and process ``records``, and hand the result to the loader (settling the batch before)."""
        started = time.perf_counter()
        # Trim the held subjects before processing, never between a range's processing and its
        # hand-over: a subject dropped here and named again is reloaded from what is loaded, after
        # waiting for the batch in flight if it has rows of it (:meth:`_load_subjects`).
        for partition in self.partitions.values():
            if partition.held is not None:
                partition.checker.state.forget(partition.held.evict())
        for r in records:
            owner = self.partitions.get((r.topic, r.partition))
            if owner is not None:  # else: not (or no longer) ours
                owner.accept(r)
        work = []
        not_after_ms = int((time.time() + self.config.clock_skew_s) * 1000)  # later: a contract error
        for partition in self.partitions.values():
            for chunk, replayed in partition.take_ranges():
                # a schema registry that cannot answer is waited for: the chunk is decoded again
                work.append((partition, replayed, with_backoff(
                    partial(decode, chunk, self.codec, not_after_ms), retry_on=RegistryUnavailable, stop=self._stop,
                    what="a schema registry lookup", on_retry=self.metrics.registry_retries.inc)))
        self._load_subjects(work)
        batches, owners = [], {}
        for partition, replayed, decoded in work:
            owners[partition.tp] = partition
            batch = check(decoded, partition.checker, partition.incarnation, partition.seen)
            batch.replayed = replayed
            batches.append(batch)
        if not batches:
            return
        self.settle()
        for b in batches:  # read here: the client is not the loader thread's to call
            b.high_watermark = self.consumer.highwater((b.topic, b.partition)) or 0
        future = self._loader.submit(self._write, batches, records)
        self._inflight = InFlight(future, batches, records, started, owners)

    def _write(self, batches: list[PartitionBatch], records: list[Record]) -> None:
        """On the loader thread: the sink's part (see :mod:`.sink`)."""
        self.sink.write(batches)
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
                   if self.partitions.get((b.topic, b.partition)) is inflight.owners[(b.topic, b.partition)]]
        offsets = {(b.topic, b.partition): b.last_offset + 1 for b in batches}
        try:
            self._commit(offsets)
        except CommitRefused as exc:
            # The group moved on (this member was dropped, e.g. after waiting long for the store):
            # the next poll rejoins it, and whoever owns these partitions then replays these loaded
            # ranges from the journal (repaired: nothing stored twice) and counts them.
            log.warning("%s: %s; the partitions' next owner replays these ranges from the journal",
                        self.config.name, exc)
            return
        self._count(batches, time.perf_counter() - inflight.started)
        if self.bulk is not None and time.monotonic() >= self._next_bulk:
            self.bulk.run_once()
            self._next_bulk = time.monotonic() + self.config.bulk_every_s
        if self.after_batch is not None:
            self.after_batch(self)

    def _commit(self, offsets: dict[TP, int]) -> None:
        """Commit; a broker that cannot be reached is waited for (committing the same offsets again
        is harmless). A refusal because the group moved on is raised at once: see :meth:`settle`."""
        with_backoff(partial(self.consumer.commit, offsets), retry_on=BrokerError, except_for=(CommitRefused,),
                     stop=self._stop, what=f"{self.config.name}: committing offsets to the broker",
                     on_retry=self._troubled)

    def _load_subjects(self, work: list[tuple[Partition, bool, Decoded]]) -> None:
        """Before the poll's ranges are checked: the state of the subjects they name that their
        partition's checker does not hold, as of the partition's first range, from ClickHouse, in
        one query per topic. (A subject first named in a partition's later range has no row
        between the two ranges: it would be named in the earlier one.)"""
        wanted: dict[TP, tuple[int, int, set[str]]] = {}
        for partition, _, decoded in work:
            if partition.held is None:
                continue
            missing = partition.held.see({e.subject_id for _, e in decoded.events})
            if missing:
                life, before, subjects = wanted.get(partition.tp, (partition.incarnation, decoded.first_offset, set()))
                wanted[partition.tp] = (life, before, subjects | missing)
        if not wanted:
            return
        inflight = self._inflight
        if inflight is not None and any(subjects & inflight.state_subjects(tp)
                                        for tp, (_, _, subjects) in wanted.items()):
            wait([inflight.future])  # their latest rows are still being loaded
        for topic in {tp[0] for tp in wanted}:
            self.sink.restore_subjects(topic, {p: w for (t, p), w in wanted.items() if t == topic},
                                       {p: self.partitions[(t, p)].checker.state for (t, p) in wanted if t == topic})

    def _count(self, batches: list[PartitionBatch], seconds: float) -> None:
        self.totals.add(batches)
        m = self.metrics
        m.batch_seconds.observe(seconds)
        for b in batches:
            m.records.inc(b.size)
            for kind in set(b.events["type"]):
                m.events.labels(kind).inc(b.events["type"].count(kind))
            for rule, n in b.counts.items():
                m.violations.labels(rule).inc(n)
            for dead in b.dead:
                m.dlq.labels(dead.kind).inc()
        self._update_lag()

    def _update_lag(self) -> int | None:
        """Records behind the high watermarks; None while a partition's is unknown (no fetch
        response yet since it was assigned): unknown is not caught up."""
        total: int | None = 0
        for tp, partition in self.partitions.items():
            high = self.consumer.highwater(tp)
            if high is None:
                total = None
                continue
            lag = max(0, high - partition.next_offset)
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
