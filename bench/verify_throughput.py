"""How fast does ``privaudit verify`` read a store? (Goal, evidence issue: a month of a busy service,
10 million events, in minutes, not hours.)

    python bench/verify_throughput.py --events 1000000 --json

Loads ``--events`` simulated events into an embedded store through the consumer's own code (decode,
check, the repeat / rewrite window, the hash chain, the sink with a signing key; 6 partitions, no
broker: the ranges are cut as a consumer would cut them), then times :class:`Verification` over
the whole store. Prints ``load_eps`` (for scale) and ``verify_eps``: events verified per second,
with ``verify_s``; and the findings, which must be 0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import zlib
from pathlib import Path

from privaudit.bus import Record
from privaudit.checker import Checker
from privaudit.consumers.batch import process
from privaudit.consumers.seen import Seen
from privaudit.consumers.sink import Sink
from privaudit.evidence import Verifier, load_signer
from privaudit.evidence.verify import Verification
from privaudit.policy import load_policy
from privaudit.producers.simulator import SimulationConfig, simulate
from privaudit.schemas import Codec
from privaudit.settings import TOPIC_EVENTS
from privaudit.store import Store

PARTITIONS = 6
RANGE = 5_000  # records per partition per batch, about what a consumer cuts at a busy time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="privaudit-verify-bench-"))
    try:
        store = Store.connect(f"chdb://{work / 'clickhouse'}")
        store.migrate()
        signer = load_signer(None, work / "ledger.key", create=True)
        policy, codec = load_policy(), Codec()
        sink = Sink(store, signer=signer)
        checkers = [Checker(policy, bulk_access=False) for _ in range(PARTITIONS)]
        seen = [Seen() for _ in range(PARTITIONS)]
        pending: list[list[Record]] = [[] for _ in range(PARTITIONS)]
        offsets = [0] * PARTITIONS
        began = time.perf_counter()
        for event in simulate(SimulationConfig(events=args.events, seed=args.seed), policy):
            p = zlib.crc32(event.subject_id.encode()) % PARTITIONS
            pending[p].append(Record(TOPIC_EVENTS, p, offsets[p], None, codec.encode(event), 0))
            offsets[p] += 1
            if len(pending[p]) == RANGE:
                sink.write([process(pending[p], codec, checkers[p], seen=seen[p])])
                pending[p] = []
        for p in range(PARTITIONS):
            if pending[p]:
                sink.write([process(pending[p], codec, checkers[p], seen=seen[p])])
        load_s = time.perf_counter() - began
        store.command("OPTIMIZE TABLE privaudit.events FINAL")  # as a month-old store would be: merged
        began = time.perf_counter()
        report = Verification(store, Verifier(signer.public, "bench"), retention_days=730).run()
        verify_s = time.perf_counter() - began
        store.close()
        result = {"events": report.events, "ranges": report.ranges, "load_eps": round(args.events / load_s),
                  "verify_s": round(verify_s, 2), "verify_eps": round(report.events / verify_s),
                  "findings": [f.line() for f in report.findings]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
