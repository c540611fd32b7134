"""Pipeline throughput and latency, measured in one run on the same pre-produced topic.

    python bench/pipeline_throughput.py --events 100000 --client kafka-python --json
    python bench/pipeline_throughput.py --events 100000 --client confluent --json
    python bench/pipeline_throughput.py --events 20000 --soak-seconds 600 --json   # memory over 10 min
    python bench/pipeline_throughput.py --events 20000 --soak-seconds 600 --max-members 5000 --max-subjects 2000 --json

Prints one JSON object:
- ``raw_consume_eps``: the chosen client reading the topic and discarding the records;
- ``decode_eps``: fastavro ``schemaless_reader`` alone on the same records;
- ``pipeline_eps``: the audit consumer end to end (consume, decode, validate, check, load into the
  embedded ClickHouse, publish, commit), from its first record to its last commit;
- ``latency_p50_ms`` / ``latency_p99_ms``: from the producer's record timestamp to the moment its
  batch is loaded and its violations published (the rows are queryable), at a steady
  ``--rate`` (default 5,000 events/s) for ``--latency-seconds``;
- with ``--soak-seconds``: the consumer process's resident memory sampled during a steady run of
  that length (``rss_mb`` first/last/max and the samples), and minute by minute the p99 latency,
  the longest batch load and the number of loads.

Goals (pipeline issue): kafka-python ``pipeline_eps >= 0.5 x raw_consume_eps``; confluent
``pipeline_eps >= 0.5 x decode_eps``; p99 <= 2 s; memory flat over 10 minutes.
"""

from __future__ import annotations

import argparse
from array import array
import json
import multiprocessing as mp
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastavro import schemaless_reader  # noqa: E402

from privaudit.bus import LocalBroker, ensure_topics, make_consumer, make_producer  # noqa: E402
from privaudit.consumers import AuditConsumer, ConsumerConfig  # noqa: E402
from privaudit.policy import load_policy  # noqa: E402
from privaudit.producers.simulator import SimulationConfig, simulate  # noqa: E402
from privaudit.schemas import Codec  # noqa: E402
from privaudit.settings import TOPIC_EVENTS  # noqa: E402
from privaudit.store import Store  # noqa: E402

PARTITIONS = 6


def _frames(n: int, seed: int, max_members: int | None = None) -> list[tuple[bytes, bytes]]:
    codec = Codec()
    config = SimulationConfig(events=n, seed=seed, max_members=max_members)
    return [(e.subject_id.encode(), codec.encode(e)) for e in simulate(config, load_policy())]


def _produce(bootstrap: str, frames: list[tuple[bytes, bytes]], rate: float | None = None, linger_ms: int = 5) -> None:
    # the fastest producer we have: the topic is not what we measure
    producer = make_producer("confluent", bootstrap, **{"linger.ms": linger_ms})
    began = time.monotonic()
    for i, (key, value) in enumerate(frames):
        producer.send(TOPIC_EVENTS, value, key=key)
        if rate:
            ahead = (i + 1) / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(120)
    producer.close()


def _steady_producer(bootstrap: str, n: int, rate: float, seed: int, max_members: int | None, linger_ms: int) -> None:
    _produce(bootstrap, _frames(n, seed, max_members), rate, linger_ms)


def raw_consume(client: str, bootstrap: str, n: int) -> tuple[float, list[bytes]]:
    consumer = make_consumer(client, bootstrap, f"raw-{client}-{time.time()}", [TOPIC_EVENTS],  # type: ignore[arg-type]
                             on_assign=lambda s: None, on_revoke=lambda s: None)
    values: list[bytes] = []
    first = None
    while len(values) < n:
        records = consumer.poll(0.5, 5000)
        if records and first is None:
            first = time.perf_counter()
        values.extend(r.value for r in records)
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return n / elapsed, values


def decode_rate(values: list[bytes]) -> float:
    codec = Codec()
    pairs = [(v[10:], codec.writer_of(v)[0].parsed) for v in values]
    began = time.perf_counter()
    for datum, schema in pairs:
        schemaless_reader(BytesIO(datum), schema)
    return len(pairs) / (time.perf_counter() - began)


class _Timed(AuditConsumer):
    """The audit consumer, noting each record's produce-to-queryable latency when its batch is
    loaded (in a compact array, so the measurement does not itself grow the process by ~100 MB per
    3M records)."""

    latencies: array
    loads: list[tuple[float, float]]  # (when, seconds) of each batch's load, for the per-minute view

    def loaded(self, records):  # type: ignore[no-untyped-def]
        now_ms = time.time() * 1000
        self.latencies.extend(now_ms - r.timestamp_ms for r in records)

    def _store(self, batches, records):  # type: ignore[no-untyped-def]
        began = time.monotonic()
        super()._store(batches, records)
        self.loads.append((began, time.monotonic() - began))


def pipeline(client: str, bootstrap: str, store: Store, n: int, group: str, *, timed: bool = False,
             soak_until: float | None = None, max_subjects: int | None = 50_000) -> dict:
    config = ConsumerConfig(bootstrap=bootstrap, client=client, group=group, max_subjects=max_subjects)  # type: ignore[arg-type]
    consumer = _Timed(config, store, load_policy())
    consumer.latencies = array("f")
    consumer.loads = []
    stop = threading.Event()
    first = None
    rss: list[float] = []
    state: list[int] = []  # consent/membership histories held by the checkers, sampled with rss
    next_sample = time.monotonic()
    try:
        while consumer.totals.records < n:
            records = consumer.gather()
            if records:
                first = first or time.perf_counter()
                consumer.handle(records)
                if consumer.totals.records + consumer.in_flight >= n:
                    consumer.settle()  # the last batch: do not wait for an empty poll
            else:
                consumer.settle()
            if soak_until is not None and time.monotonic() >= next_sample:
                rss.append(_rss_mb())
                state.append(sum(len(c.state.consents) + len(c.state.membership) for c in consumer._checkers.values()))
                next_sample += 10
    finally:
        stop.set()
        consumer.close()
    elapsed = time.perf_counter() - (first or time.perf_counter())
    out = {"eps": n / elapsed, "latencies": consumer.latencies, "loads": consumer.loads}
    if rss:
        out["rss"], out["state"] = rss, state
    return out


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--client", choices=["kafka-python", "confluent"], default="kafka-python")
    parser.add_argument("--rate", type=float, default=5000.0, help="steady produce rate for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--soak-seconds", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-members", type=int, default=None,
                        help="bound the simulated population in the steady run (so checker state stops growing)")
    parser.add_argument("--max-subjects", type=int, default=50_000,
                        help="subjects whose state the consumer holds per partition (0: all); see ConsumerConfig")
    parser.add_argument("--producer-linger-ms", type=int, default=5,
                        help="the steady producer's linger.ms (5: our producers' default); see bench/broker_latency.py")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="privaudit-bench-"))
    result: dict = {"events": args.events, "client": args.client, "partitions": PARTITIONS}
    try:
        with LocalBroker(log=work / "broker.log") as broker:
            ensure_topics(broker.bootstrap, PARTITIONS)
            _produce(broker.bootstrap, _frames(args.events, args.seed))
            raw_eps, values = raw_consume(args.client, broker.bootstrap, args.events)
            result["raw_consume_eps"] = round(raw_eps)
            result["decode_eps"] = round(decode_rate(values))
            store = Store.connect(f"chdb://{work / 'clickhouse'}")
            store.migrate()
            held = args.max_subjects or None
            result["pipeline_eps"] = round(pipeline(args.client, broker.bootstrap, store, args.events, "bench-throughput",
                                                    max_subjects=held)["eps"])
            result["pipeline_over_raw"] = round(result["pipeline_eps"] / result["raw_consume_eps"], 3)
            result["pipeline_over_decode"] = round(result["pipeline_eps"] / result["decode_eps"], 3)

            steady = int(args.rate * max(args.latency_seconds, args.soak_seconds))
            producer = mp.get_context("spawn").Process(target=_steady_producer, args=(broker.bootstrap, steady, args.rate, args.seed + 1, args.max_members, args.producer_linger_ms))
            began = time.monotonic()
            producer.start()
            # the same group resumes after the throughput run: it reads exactly the steady records
            run = pipeline(args.client, broker.bootstrap, store, steady, "bench-throughput",
                           soak_until=began + args.soak_seconds if args.soak_seconds else None, max_subjects=held)
            producer.join()
            lat = sorted(run["latencies"])
            result.update(
                steady_rate=args.rate, steady_events=steady, producer_linger_ms=args.producer_linger_ms,
                latency_p50_ms=round(statistics.median(lat)), latency_p99_ms=round(lat[int(len(lat) * 0.99) - 1]),
            )
            if args.soak_seconds:  # where in the run the tail latencies are, minute by minute
                per_minute = int(args.rate * 60)
                chunks = [sorted(run["latencies"][i:i + per_minute]) for i in range(0, len(run["latencies"]), per_minute)]
                result["latency_p99_ms_by_minute"] = [round(c[int(len(c) * 0.99) - 1]) for c in chunks if len(c) >= 100]
                loads = run["loads"]
                start = loads[0][0] if loads else 0.0
                by_minute: dict[int, list[float]] = {}
                for began, seconds in loads:
                    by_minute.setdefault(int((began - start) // 60), []).append(seconds)
                result["load_ms_max_by_minute"] = [round(max(v) * 1000) for _, v in sorted(by_minute.items())]
                result["loads_per_minute"] = [len(v) for _, v in sorted(by_minute.items())]
            if "rss" in run:
                rss = run["rss"]
                result.update(soak_seconds=args.soak_seconds, max_members=args.max_members, max_subjects=args.max_subjects,
                              rss_mb_first=round(rss[0]), rss_mb_last=round(rss[-1]),
                              rss_mb_max=round(max(rss)), rss_mb_samples=[round(x) for x in rss],
                              state_histories_samples=run["state"])
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
