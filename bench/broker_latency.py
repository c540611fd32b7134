"""The local broker's own produce-to-consume latency, with no audit work at all.

    python bench/broker_latency.py --seconds 300 --client kafka-python --json

A producer process (confluent-kafka) sends ``--rate`` records a second (160 bytes, keyed over 5,000
keys, 6 partitions) to a fresh local broker (Tansu); this process reads them with the chosen client
and discards them, noting each record's age on arrival (now minus its producer timestamp). Prints
p50/p99 per minute: the floor under ``pipeline_throughput.py``'s latency, which is measured the same
way plus the audit consumer's work.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

from privaudit.bus import LocalBroker, ensure_topics, make_consumer
from privaudit.settings import TOPIC_EVENTS

from _kafka import PARTITIONS, produce  # the same steady producer as the pipeline's benchmark


def _steady(bootstrap: str, n: int, rate: float, linger_ms: int) -> None:
    payload = b"x" * 160
    produce(bootstrap, [(str(i % 5000).encode(), payload) for i in range(n)], rate, linger_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--client", choices=["kafka-python", "confluent"], default="kafka-python")
    parser.add_argument("--linger-ms", type=int, default=5,
                        help="the producer's linger.ms (5: our producers' default): how long it gathers a batch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    total, per_minute = int(args.seconds * args.rate), int(args.rate * 60)
    minutes: list[dict] = []
    with LocalBroker(log=Path(tempfile.mkdtemp(prefix="privaudit-broker-")) / "broker.log") as broker:
        ensure_topics(broker.bootstrap, PARTITIONS)
        consumer = make_consumer(args.client, broker.bootstrap, "broker-latency", [TOPIC_EVENTS],
                                 on_assign=lambda s: None, on_revoke=lambda s: None)
        while not consumer.assignment():
            consumer.poll(0.5, 100)
        producer = mp.get_context("spawn").Process(target=_steady,
                                                   args=(broker.bootstrap, total, args.rate, args.linger_ms))
        producer.start()
        ages: list[float] = []
        got, deadline = 0, time.monotonic() + args.seconds + 120
        while got < total and time.monotonic() < deadline:
            records = consumer.poll(0.5, 5000)
            now_ms = time.time() * 1000
            ages += [now_ms - r.timestamp_ms for r in records]
            got += len(records)
            if len(ages) >= per_minute or (got >= total and ages):
                ages.sort()
                minutes.append({"p50_ms": round(ages[len(ages) // 2]), "p99_ms": round(ages[int(len(ages) * 0.99) - 1]),
                                "records": len(ages)})
                ages = []
        producer.join()
        consumer.close()
    result = {"client": args.client, "rate": args.rate, "seconds": args.seconds, "linger_ms": args.linger_ms,
              "received": got, "by_minute": minutes}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    sys.exit(0 if got >= total else 1)


if __name__ == "__main__":
    main()
