"""Pipeline throughput and latency, measured in one run on the same pre-produced topic.

    python bench/pipeline_throughput.py --events 100000 --client kafka-python --json
    python bench/pipeline_throughput.py --events 100000 --client confluent --json
    python bench/pipeline_throughput.py --events 20000 --soak-seconds 600 --json   # memory over 10 min
    python bench/pipeline_throughput.py --events 20000 --soak-seconds 600 --max-members 5000 --max-subjects 2000 --json
    python bench/pipeline_throughput.py --events 20000 --warmup-seconds 240 --soak-seconds 600 --max-members 5000 \
        --max-subjects 2000 --producer-linger-ms 50 --json   # memory over 10 min once the held state is full
    python bench/pipeline_throughput.py --events 200000 --processes 2 --json   # also privaudit run --processes 2
    python bench/pipeline_throughput.py --events 20000 --warmup-seconds 240 --soak-seconds 1800 --max-members 5000 \
        --max-subjects 2000 --producer-linger-ms 50 --profile soak.jsonl --json   # and where each minute went
    python bench/pipeline_throughput.py ... --profile soak.jsonl --tracemalloc 4 --json   # and where Python memory grew

Prints one JSON object:
- ``raw_consume_eps``: the chosen client reading the topic and discarding the records;
- ``decode_eps``: fastavro ``schemaless_reader`` alone on the same records;
- ``content_hash_us``, ``id_lookup_us``, ``chain_step_us``: what the evidence adds per event on the
  consumer's hot path, each alone on the same records (the content hash, the event id looked up and
  remembered in its partition's window, one step of the hash chain);
- ``pipeline_eps``: the audit consumer end to end (consume, decode, validate, check, load into the
  embedded ClickHouse, publish, commit, and the PA-012 bulk stage's scans every second, as
  ``privaudit run`` has them), from its first record to its last commit;
- ``latency_p50_ms`` / ``latency_p99_ms``: from the producer's record timestamp to the moment its
  batch is loaded and its violations published (the rows are queryable), at a steady
  ``--rate`` (default 5,000 events/s) for ``--latency-seconds``, started once the consumer has
  joined its group (``consumer_assigned_s`` says how long that took);
- with ``--processes N``: ``pipeline_processes_eps``, the same records read by ``privaudit run
  --processes N``'s consumers (each in a process of its own, the store served from this one);
- with ``--soak-seconds``: the consumer process's resident memory sampled every 10 s from the
  steady run's first record (``rss_mb_samples``, beside the embedded engine's own accounting and
  the checker state's size), its least-squares slope over the soak's window, which starts after
  ``--warmup-seconds`` of the same load, and minute by minute the p99 latency, the longest batch
  load and the number of loads;
- with ``--profile FILE``: a line a minute in FILE with the time of each kind of store statement and
  the CPU of each thread (:mod:`_profile`).

Goals (pipeline issue): kafka-python ``pipeline_eps >= 0.5 x raw_consume_eps``; confluent
``pipeline_eps >= 0.5 x decode_eps``; p99 <= 2 s; memory flat over 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from fastavro import schemaless_reader

from privaudit.bus import LocalBroker, ensure_topics, make_consumer
from privaudit.canonical import content_hash
from privaudit.consumers import AuditConsumer, BulkStage, ConsumerConfig, Totals, run_consumers
from privaudit.consumers.seen import Seen
from privaudit.evidence import Chain, RecordKind, event_record
from privaudit.evidence.chain import EMPTY_VERDICTS
from privaudit.policy import load_policy
from privaudit.schemas import Codec
from privaudit.schemas.models import stored_content
from privaudit.settings import TOPIC_EVENTS
from privaudit.store import Store

from _kafka import PARTITIONS, produce, simulated_frames, steady_producer
from _profile import MinuteProfile


def raw_consume(client: str, bootstrap: str, n: int) -> tuple[float, list[bytes]]:
    consumer = make_consumer(client, bootstrap, f"raw-{client}-{time.time()}", [TOPIC_EVENTS],  # type: ignore[arg-type]
                             on_assign=lambda s: None, on_revoke=lambda s: None)
    values: list[bytes] = []
    first = None
    while len(values) < n:
        records = consumer.poll(0.5, 5000)
        if records and first is None:
            first = time.perf_counter()
        values.extend(r.value for r in records if r.value is not None)
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return n / elapsed, values


def evidence_costs(values: list[bytes]) -> dict[str, float]:
    """What telling repeats and rewrites apart adds per event on the consumer's hot path, in
    microseconds: the content hash, and the lookup (and remembering) of the event id in its
    partition's window (consumers/seen.py); and a chain step per offset (privaudit/evidence)."""
    codec = Codec()
    events = [codec.decode(v) for v in values]
    began = time.perf_counter()
    contents = [stored_content(e) for e in events]
    digests = [content_hash(c) for c in contents]
    hashing = time.perf_counter() - began
    seen = Seen()
    began = time.perf_counter()
    for offset, (content, digest) in enumerate(zip(contents, digests, strict=True)):
        if seen.lookup(content[0], offset) is None:
            seen.remember(content[0], digest, offset)
    lookup = time.perf_counter() - began
    chain = Chain()
    began = time.perf_counter()
    for offset, digest in enumerate(digests):
        chain.add(offset, event_record(RecordKind.EVENT, digest, "v1", EMPTY_VERDICTS))
    chaining = time.perf_counter() - began
    n = len(events)
    return {"content_hash_us": round(hashing / n * 1e6, 2), "id_lookup_us": round(lookup / n * 1e6, 2),
            "chain_step_us": round(chaining / n * 1e6, 2)}


def decode_rate(values: list[bytes]) -> float:
    codec = Codec()
    pairs = [(v[10:], codec.writer_of(v)[0].parsed) for v in values]
    began = time.perf_counter()
    for datum, schema in pairs:
        schemaless_reader(BytesIO(datum), schema)
    return len(pairs) / (time.perf_counter() - began)


class Latencies:
    """Produce-to-queryable latencies as histograms, one per ``per_chunk`` records (a minute of the
    steady run): 1 ms buckets up to 2 s, 10 ms buckets up to 60 s, one bucket beyond. A fixed ~31 KB
    per chunk, so that measuring a 10-minute soak does not itself grow the process it measures (a
    list of 3M floats would add 12-24 MB, linearly)."""

    FINE_MS, COARSE_MS = 2_000, 60_000
    BUCKETS = FINE_MS + (COARSE_MS - FINE_MS) // 10 + 1

    def __init__(self, per_chunk: int | None = None) -> None:
        self.per_chunk = per_chunk or 2**62  # None: one histogram
        self.count = 0
        self.chunks: list[array] = []

    def add(self, ms: float) -> None:
        chunk = self.count // self.per_chunk
        if chunk == len(self.chunks):
            self.chunks.append(array("I", bytes(4 * self.BUCKETS)))
        self.chunks[chunk][self._bucket(ms)] += 1
        self.count += 1

    def _bucket(self, ms: float) -> int:
        if ms < self.FINE_MS:
            return max(int(ms), 0)
        if ms < self.COARSE_MS:
            return self.FINE_MS + int(ms - self.FINE_MS) // 10
        return self.BUCKETS - 1

    def _upper_ms(self, bucket: int) -> float:
        if bucket < self.FINE_MS:
            return bucket + 1
        if bucket < self.BUCKETS - 1:
            return self.FINE_MS + (bucket - self.FINE_MS + 1) * 10
        return float("inf")

    def quantile(self, q: float, chunks: list[array] | None = None) -> float:
        """The upper edge of the bucket holding the ``q`` quantile (so within 1 ms below 2 s, 10 ms above)."""
        chunks = self.chunks if chunks is None else chunks
        total = sum(sum(c) for c in chunks)
        if not total:
            return float("nan")
        rank, seen = max(int(total * q + 0.5), 1), 0
        for bucket in range(self.BUCKETS):
            seen += sum(c[bucket] for c in chunks)
            if seen >= rank:
                return self._upper_ms(bucket)
        return float("inf")

    def by_chunk(self, q: float, least: int = 100) -> list[float]:
        return [self.quantile(q, [c]) for c in self.chunks if sum(c) >= least]


class _Timed(AuditConsumer):
    """The audit consumer, noting each record's produce-to-queryable latency when its batch is
    loaded."""

    latencies: Latencies
    loads: list[tuple[float, float]]  # (when, seconds) of each batch's load, for the per-minute view

    def loaded(self, records):
        now_ms = time.time() * 1000
        add = self.latencies.add
        for r in records:
            add(now_ms - r.timestamp_ms)

    def _write(self, batches, records):
        began = time.monotonic()
        super()._write(batches, records)
        self.loads.append((began, time.monotonic() - began))


def pipeline(client: str, bootstrap: str, store: Store, n: int, group: str, *, timed: bool = False,
             sample: bool = False, max_subjects: int | None = 50_000, per_minute: int | None = None,
             when_warm: tuple[float, Callable[[], None]] | None = None,
             when_assigned: Callable[[], None] | None = None) -> dict:
    """The audit consumer over ``n`` records; ``when_warm = (seconds, hook)`` calls the hook once,
    that many seconds after the first record; ``when_assigned`` is called once, when the consumer
    has joined its group and started its partitions (``assigned_s`` after it was made)."""
    config = ConsumerConfig(bootstrap=bootstrap, client=client, group=group, max_subjects=max_subjects)  # type: ignore[arg-type]
    policy = load_policy()
    consumer = _Timed(config, store, policy, bulk=BulkStage(store, policy, None, partitions=PARTITIONS))
    consumer.latencies = Latencies(per_minute)
    consumer.loads = []
    stop = threading.Event()
    first = None
    rss: list[float] = []
    state: list[int] = []  # consent/membership histories held by the checkers, sampled with rss
    engine: list[float] = []  # memory the embedded engine accounts for (its MemoryTracking), sampled with rss
    next_sample = 0.0  # with ``sample``: every 10 s from the first record
    made, assigned_s = time.monotonic(), None
    try:
        while consumer.totals.records < n:
            records = consumer.gather()
            if assigned_s is None and consumer.owned:
                assigned_s = time.monotonic() - made
                if when_assigned is not None:
                    when_assigned()
            if records:
                if first is None:
                    first, next_sample = time.perf_counter(), time.monotonic()
                consumer.handle(records)
                if consumer.totals.records + consumer.in_flight >= n:
                    consumer.settle()  # the last batch: do not wait for an empty poll
            else:
                consumer.settle()
            if when_warm is not None and first is not None and time.perf_counter() - first >= when_warm[0]:
                when_warm[1]()
                when_warm = None
            if sample and first is not None and time.monotonic() >= next_sample:
                rss.append(_rss_mb())
                state.append(sum(len(p.checker.state.consents) + len(p.checker.state.membership)
                                 for p in consumer.partitions.values()))
                engine.append(_engine_mb(store))
                next_sample += 10
    finally:
        stop.set()
        consumer.close()
    elapsed = time.perf_counter() - (first or time.perf_counter())
    out = {"eps": n / elapsed, "latencies": consumer.latencies, "loads": consumer.loads, "assigned_s": assigned_s}
    if rss:
        out["rss"], out["state"], out["engine"] = rss, state, engine
    return out


def pipeline_processes(client: str, bootstrap: str, store: Store, n: int, group: str, processes: int,
                       max_subjects: int | None = 50_000) -> float:
    """``privaudit run --processes N``'s consumers (each in a process of its own, the store served
    from this one): events per second from the first record any of them read to the report,
    after its commit, that brings the total to ``n``."""
    config = ConsumerConfig(bootstrap=bootstrap, client=client, group=group, max_subjects=max_subjects)  # type: ignore[arg-type]
    stop = threading.Event()
    done: list[float] = []

    def observe(totals: list[Totals]) -> None:
        if not done and sum(t.records for t in totals) >= n:
            firsts = [t.first_record_wall for t in totals if t.first_record_wall is not None]
            done.append(n / (time.time() - min(firsts)))
            stop.set()

    run_consumers(config, store, load_policy(), processes=processes, partitions=PARTITIONS, stop=stop,
                  progress=False, observe=observe)
    return done[0]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _engine_mb(store: Store) -> float:
    _, rows = store.query("SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'")
    return round(rows[0][0] / 2**20, 1) if rows else float("nan")


def _slope_mb_per_min(samples: list[float], every_s: float = 10.0) -> float:
    """Least-squares slope of samples taken every ``every_s`` seconds, in MB per minute."""
    n = len(samples)
    if n < 2:
        return float("nan")
    xs = [i * every_s / 60 for i in range(n)]
    mx, my = sum(xs) / n, sum(samples) / n
    return sum((x - mx) * (y - my) for x, y in zip(xs, samples, strict=True)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--client", choices=["kafka-python", "confluent"], default="kafka-python")
    parser.add_argument("--rate", type=float, default=5000.0, help="steady produce rate for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--soak-seconds", type=float, default=0.0,
                        help="a steady run this long (after --warmup-seconds) with memory sampled every 10 s")
    parser.add_argument("--warmup-seconds", type=float, default=0.0,
                        help="steady load before the soak's window (sampled too, reported apart)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-members", type=int, default=None,
                        help="bound the simulated population in the steady run (so checker state stops growing)")
    parser.add_argument("--max-subjects", type=int, default=50_000,
                        help="subjects whose state the consumer holds per partition (0: all); see ConsumerConfig")
    parser.add_argument("--producer-linger-ms", type=int, default=5,
                        help="the steady producer's linger.ms (5: our producers' default); see bench/broker_latency.py")
    parser.add_argument("--processes", type=int, default=0,
                        help="also measure pipeline_eps with the consumers in this many processes "
                             "(privaudit run --processes)")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a line a minute to FILE: time per kind of store statement, CPU per thread")
    parser.add_argument("--tracemalloc", metavar="FRAMES", type=int, default=0,
                        help="with --profile: trace Python's allocations once the steady run is warm, FRAMES deep, "
                             "and write each minute where held memory grew (slows the run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.tracemalloc and not args.profile:
        parser.error("--tracemalloc writes into the --profile file: give both")
    profile = MinuteProfile(args.profile, trace_frames=args.tracemalloc) if args.profile else None
    if profile is not None:
        profile.start()

    work = Path(tempfile.mkdtemp(prefix="privaudit-bench-"))
    result: dict = {"events": args.events, "client": args.client, "partitions": PARTITIONS}
    try:
        with LocalBroker(log=work / "broker.log") as broker:
            ensure_topics(broker.bootstrap, PARTITIONS)
            produce(broker.bootstrap, simulated_frames(args.events, args.seed))
            raw_eps, values = raw_consume(args.client, broker.bootstrap, args.events)
            result["raw_consume_eps"] = round(raw_eps)
            result["decode_eps"] = round(decode_rate(values))
            result.update(evidence_costs(values))
            store = Store.connect(f"chdb://{work / 'clickhouse'}")
            if profile is not None:
                profile.attach(store)
            store.migrate()
            held = args.max_subjects or None
            timed = pipeline(args.client, broker.bootstrap, store, args.events, "bench-throughput", max_subjects=held)
            result["pipeline_eps"] = round(timed["eps"])
            result["pipeline_over_raw"] = round(result["pipeline_eps"] / result["raw_consume_eps"], 3)
            result["pipeline_over_decode"] = round(result["pipeline_eps"] / result["decode_eps"], 3)
            if args.processes:  # the same records again, by a second group into a database of its own
                other = Store.connect(store.dsn, database="bench_processes")
                other.migrate()
                eps = pipeline_processes(args.client, broker.bootstrap, other, args.events, "bench-processes",
                                         args.processes, max_subjects=held)
                other.close()
                result.update(processes=args.processes, pipeline_processes_eps=round(eps),
                              pipeline_processes_over_raw=round(eps / result["raw_consume_eps"], 3),
                              pipeline_processes_over_decode=round(eps / result["decode_eps"], 3))

            steady = int(args.rate * max(args.latency_seconds, args.warmup_seconds + args.soak_seconds))
            producer = mp.get_context("spawn").Process(target=steady_producer, args=(
                broker.bootstrap, steady, args.rate, args.seed + 1, args.max_members, args.producer_linger_ms))
            # The same group resumes after the throughput run: it reads exactly the steady records.
            # The steady load starts once the consumer has its partitions: joining the group takes
            # ~3.5 s on the local broker, which a running consumer does not pay again; it is
            # reported apart, as ``consumer_assigned_s``.
            run = pipeline(args.client, broker.bootstrap, store, steady, "bench-throughput",
                           sample=bool(args.soak_seconds), max_subjects=held,
                           per_minute=int(args.rate * 60),
                           when_warm=(args.warmup_seconds, profile.trace) if profile is not None else None,
                           when_assigned=producer.start)
            producer.join()
            lat: Latencies = run["latencies"]
            result.update(
                steady_rate=args.rate, steady_events=steady, producer_linger_ms=args.producer_linger_ms,
                latency_p50_ms=round(lat.quantile(0.5)), latency_p99_ms=round(lat.quantile(0.99)),
                consumer_assigned_s=round(run["assigned_s"], 2),
            )
            if args.soak_seconds:  # where in the run the tail latencies are, minute by minute
                result["latency_p99_ms_by_minute"] = [round(x) for x in lat.by_chunk(0.99)]
                loads = run["loads"]
                start = loads[0][0] if loads else 0.0
                by_minute: dict[int, list[float]] = {}
                for began, seconds in loads:
                    by_minute.setdefault(int((began - start) // 60), []).append(seconds)
                result["load_ms_max_by_minute"] = [round(max(v) * 1000) for _, v in sorted(by_minute.items())]
                result["loads_per_minute"] = [len(v) for _, v in sorted(by_minute.items())]
            if "rss" in run:
                rss, warm = run["rss"], int(args.warmup_seconds // 10)  # samples every 10 s from the first record
                window = rss[warm:]
                half = len(window) // 2
                result.update(soak_seconds=args.soak_seconds, warmup_seconds=args.warmup_seconds,
                              max_members=args.max_members, max_subjects=args.max_subjects,
                              rss_mb_samples=[round(x) for x in rss], engine_mb_samples=run["engine"],
                              state_histories_samples=run["state"], warmup_samples=warm)
                # over the soak's window (after the warm-up): MB at its start and end, least-squares
                # slopes over all of it and its halves, and the range it stays in
                result["soak_rss_mb"] = {"first": round(window[0]), "last": round(window[-1]),
                                         "min": round(min(window)), "max": round(max(window))}
                result["soak_rss_slope_mb_per_min"] = {"all": round(_slope_mb_per_min(window), 2),
                                                       "first_half": round(_slope_mb_per_min(window[:half]), 2),
                                                       "second_half": round(_slope_mb_per_min(window[half:]), 2)}
                if warm:
                    result["warmup_rss_slope_mb_per_min"] = round(_slope_mb_per_min(rss[:warm + 1]), 2)
            store.close()
    finally:
        if profile is not None:
            profile.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
