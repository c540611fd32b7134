"""What an emitter call costs the service: before, during and after a broker outage.

    python bench/emitter_calls.py --events 20000 --rate 2000 --json

One thread calls ``AuditEmitter.send_event`` with simulated events (already validated, so this is
framing plus sending or spooling), timing each call, in three phases:

- ``down``: no broker at the emitter's address, as fast as it can: every event is spooled (appended
  to disk and fsynced) before the call returns;
- ``recovering``: a local broker (Tansu) comes up at that address with the spool full of the first
  phase's events, and the service goes on at a steady ``--rate`` calls a second; ``drained_after_s``
  is when the spool was first seen empty and calls went direct again (null: never, in this phase);
- ``up``: the broker up, the spool empty, as fast as it can.

Prints, per phase, calls a second and the p50/p99/max of one call, then what the emitter counted.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from privaudit.bus import LocalBroker, ensure_topics, free_port
from privaudit.policy import load_policy
from privaudit.producers import AuditEmitter
from privaudit.producers.simulator import SimulationConfig, simulate


def _phase(emitter: AuditEmitter, events: list, rate: float | None) -> dict[str, Any]:
    took, drained = [], None
    began = time.perf_counter()
    for i, event in enumerate(events):
        if rate:
            ahead = began + i / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        start = time.perf_counter()
        emitter.send_event(event)
        took.append(time.perf_counter() - start)
        if drained is None and emitter.spool.empty:
            drained = time.perf_counter() - began
    elapsed = time.perf_counter() - began
    took.sort()
    return {"calls": len(took), "calls_per_s": round(len(took) / elapsed),
            "p50_us": round(took[len(took) // 2] * 1e6), "p99_us": round(took[int(len(took) * 0.99)] * 1e6),
            "max_ms": round(took[-1] * 1e3, 1), "drained_after_s": None if drained is None else round(drained, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="Events in all; a quarter per outage phase.")
    parser.add_argument("--rate", type=float, default=2000.0, help="Calls a second while the spool drains.")
    parser.add_argument("--json", action="store_true", help="One JSON object (the default prints it indented).")
    args = parser.parse_args()

    events = list(simulate(SimulationConfig(events=args.events, seed=5), load_policy()))
    gc.freeze()  # the bench's own 20,000 events are not the service's heap: keep the collector off them
    quarter = args.events // 4
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="privaudit-bench-") as work:
        emitter = AuditEmitter(f"127.0.0.1:{port}", service="bench", spool_dir=Path(work) / "spool")
        result: dict[str, Any] = {"events": args.events, "rate": args.rate}
        result["down"] = _phase(emitter, events[:quarter], None)
        with LocalBroker(port=port, log=Path(work) / "broker.log") as broker:
            ensure_topics(broker.bootstrap, 6)
            result["recovering"] = _phase(emitter, events[quarter:2 * quarter], args.rate)
            if not emitter.flush(timeout_s=120):
                raise SystemExit("the spool did not drain within 120 s")
            result["up"] = _phase(emitter, events[2 * quarter:], None)
            if not emitter.close(timeout_s=120):
                raise SystemExit("events were left in the spool")
        result["emitter"] = emitter.stats()
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
