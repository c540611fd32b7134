"""Filling the events topic for the benchmarks: simulated events, framed, produced as fast as
possible or at a steady rate (the fastest producer we have: the topic is not what is measured)."""

from __future__ import annotations

import time

from privaudit.bus import make_producer
from privaudit.policy import load_policy
from privaudit.producers.simulator import SimulationConfig, simulate
from privaudit.schemas import Codec
from privaudit.settings import TOPIC_EVENTS

PARTITIONS = 6


def simulated_frames(n: int, seed: int, max_members: int | None = None) -> list[tuple[bytes, bytes]]:
    codec = Codec()
    config = SimulationConfig(events=n, seed=seed, max_members=max_members)
    return [(e.subject_id.encode(), codec.encode(e)) for e in simulate(config, load_policy())]


def produce(bootstrap: str, frames: list[tuple[bytes, bytes]], rate: float | None = None, linger_ms: int = 5) -> None:
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


def steady_producer(bootstrap: str, n: int, rate: float, seed: int, max_members: int | None, linger_ms: int) -> None:
    produce(bootstrap, simulated_frames(n, seed, max_members), rate, linger_ms)
