"""Is checking at least as fast as decoding? (Goal: check_eps / decode_eps >= 1.0.)

    python bench/check_throughput.py --events 200000 --json

On one synthetic mixed stream (all five types, a few percent violating), measured in one run:

- ``decode_eps``: fastavro ``schemaless_reader`` on the Avro datums, the cost every consumer
  pays anyway (the datum only: the single-object header is sliced off before timing);
- ``check_eps``: :meth:`Checker.check` on the same events, already validated, with a fresh
  checker (state built as it goes, as in production);
- also, for the record: ``codec_decode_eps`` (our framing + fastavro), ``validate_eps`` (the
  pydantic contract check on the decoded records) and ``end_to_end_eps`` (bytes -> validated
  event -> verdicts) so no cost is hidden.

Each figure is the best of ``--repeat`` interleaved rounds (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from io import BytesIO

from fastavro import schemaless_reader

from privaudit.checker import Checker
from privaudit.policy import load_policy
from privaudit.schemas import MODELS, Codec

from _stream import synthetic_stream


def _rate(n: int, fn) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return n / (time.perf_counter() - start)
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default prints it indented)")
    args = parser.parse_args()

    policy = load_policy()
    codec = Codec()
    events = synthetic_stream(args.events, args.seed)
    framed = [codec.encode(e) for e in events]
    writers = [codec.writer_of(b)[0].parsed for b in framed]
    datums = [b[10:] for b in framed]
    pairs = list(zip(datums, writers, strict=True))
    n = len(events)

    def decode() -> None:
        for datum, schema in pairs:
            schemaless_reader(BytesIO(datum), schema)

    def codec_decode() -> None:
        for b in framed:
            codec.decode_record(b)

    records = [codec.decode_record(b) for b in framed]

    def validate() -> None:
        for event_type, record in records:
            MODELS[event_type].model_validate(record)

    def check() -> None:
        checker = Checker(policy)
        for e in events:
            checker.check(e)

    def end_to_end() -> None:
        checker = Checker(policy)
        for b in framed:
            checker.check(codec.decode(b))

    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, fn in (("decode_eps", decode), ("check_eps", check), ("codec_decode_eps", codec_decode),
                         ("validate_eps", validate), ("end_to_end_eps", end_to_end)):
            best[name] = max(best.get(name, 0.0), _rate(n, fn))

    checker = Checker(policy)
    violating = sum(1 for e in events if checker.check(e))
    result = {
        "events": n,
        "violating_share": round(violating / n, 4),
        "avg_framed_bytes": round(sum(map(len, framed)) / n, 1),
        "check_eps": round(best["check_eps"]),
        "decode_eps": round(best["decode_eps"]),
        "ratio": round(best["check_eps"] / best["decode_eps"], 3),
        "codec_decode_eps": round(best["codec_decode_eps"]),
        "validate_eps": round(best["validate_eps"]),
        "end_to_end_eps": round(best["end_to_end_eps"]),
        "repeat": args.repeat,
        "python": platform.python_version(),
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
