"""The local broker alone under the soak's load: does it slow down as its log grows?

    python bench/broker_tail.py --seconds 960 --rate 5000

A producer process sends ``--rate`` records a second (300-byte values, random keys over 5,000
subjects, 50 ms linger, as the pipeline soak's producer) to ``privaudit.events`` on a fresh
``privaudit broker`` (Tansu, memory storage); a kafka-python consumer reads at the tail and drops
the records. Prints a JSON line a minute: records read, produce-to-read p50/p99 (ms), and the
CPU seconds the broker process used in that minute. No ClickHouse and no checking: what it
shows is the broker's, and so the share of a soak's latency that is the test harness's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import time


def _produce(bootstrap: str, seconds: float, rate: float) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50, batch_size=256 * 1024)
    rng = random.Random(1)
    value = bytes(rng.getrandbits(8) for _ in range(300))
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate)
        while sent < due:
            producer.send("privaudit.events", value, key=str(rng.randrange(5000)).encode())
            sent += 1
        time.sleep(0.005)
    producer.flush()
    producer.close()


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    from kafka import KafkaConsumer

    from privaudit.bus import LocalBroker, ensure_topics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=960.0)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    with LocalBroker() as broker:
        ensure_topics(broker.bootstrap, args.partitions)
        consumer = KafkaConsumer("privaudit.events", bootstrap_servers=broker.bootstrap, group_id="bench-tail",
                                 auto_offset_reset="latest", enable_auto_commit=False, max_poll_records=5000,
                                 fetch_max_bytes=16 * 1024 * 1024)
        while not consumer.assignment():
            consumer.poll(200)
        producer = mp.get_context("spawn").Process(target=_produce, args=(broker.bootstrap, args.seconds, args.rate))
        producer.start()
        assert broker.process is not None
        minute, began, cpu = 0, time.monotonic(), _cpu_s(broker.process.pid)
        latencies: list[float] = []
        while producer.is_alive():
            for records in consumer.poll(500).values():
                now_ms = time.time() * 1000
                latencies.extend(now_ms - r.timestamp for r in records)
            if time.monotonic() - began >= 60:
                latencies.sort()
                now_cpu = _cpu_s(broker.process.pid)
                n = len(latencies)
                print(json.dumps({"minute": minute, "records": n,
                                  "p50_ms": round(latencies[n // 2]) if n else None,
                                  "p99_ms": round(latencies[int(n * 0.99)]) if n else None,
                                  "broker_cpu_s": round(now_cpu - cpu, 1)}), flush=True)
                minute, began, cpu, latencies = minute + 1, time.monotonic(), now_cpu, []
        producer.join()
        consumer.close()


if __name__ == "__main__":
    main()
