"""Playing the simulated services into Kafka (``privaudit simulate``, the demo, the tests): the
events of :mod:`.simulator` sent through an :class:`~.emitter.AuditEmitter`, optionally at a
steady rate, optionally also written as JSON Lines.

    run = run_simulation(SimulationConfig(events=50_000, seed=7), policy, bootstrap="127.0.0.1:9092",
                         spool_dir=Path("data/spool"), out_jsonl=Path("events.jsonl"))
    run.delivered      # False: the broker did not take every event; they wait in the spool
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from privaudit.policy import Policy

from .emitter import AuditEmitter
from .simulator import SimulationConfig, simulate

#: How long the end of a run waits quietly before it says what it waits for.
_QUIET_FLUSH_S = 2.0


@dataclass(frozen=True)
class SimulationRun:
    produced: int
    elapsed_s: float
    delivered: bool  # False: events wait in the spool, sent on the next run with that spool


def run_simulation(config: SimulationConfig, policy: Policy, *, bootstrap: str | None, spool_dir: Path,
                   out_jsonl: Path | None = None, rate: float | None = None, flush_timeout_s: float = 60.0,
                   on_wait: Callable[[str], None] | None = None) -> SimulationRun:
    """Send ``config``'s events (not at all when ``bootstrap`` is None) and write them to
    ``out_jsonl``; ``rate`` events per second of wall time, or as fast as possible. At the end the
    broker gets up to ``flush_timeout_s`` to take what is not delivered yet; after a quiet
    ``_QUIET_FLUSH_S``, ``on_wait`` is told what it waits for."""
    emitter = AuditEmitter(bootstrap, service="simulator", spool_dir=spool_dir) if bootstrap else None
    out = open(out_jsonl, "w", encoding="utf-8") if out_jsonl else None  # noqa: SIM115 - closed below
    began = time.monotonic()
    produced = 0
    delivered = True
    try:
        for event in simulate(config, policy):
            if emitter is not None:
                emitter.send_event(event)
            if out is not None:
                out.write(event.model_dump_json() + "\n")
            produced += 1
            if rate:
                ahead = produced / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
    finally:
        if out is not None:
            out.close()
        if emitter is not None:
            if not emitter.flush(timeout_s=min(_QUIET_FLUSH_S, flush_timeout_s)) and on_wait is not None:
                waiting = emitter.stats()
                on_wait(f"waiting up to {flush_timeout_s:g} s for the broker at {bootstrap} to take the events not "
                        f"yet delivered (spooled: {waiting['spool_bytes']:,} bytes, "
                        f"in flight: {waiting['inflight']:,})")
            delivered = emitter.close(timeout_s=flush_timeout_s)
    return SimulationRun(produced, round(time.monotonic() - began, 2), delivered)
