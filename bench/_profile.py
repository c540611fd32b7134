"""Minute-by-minute profile of a benchmark process (``--profile FILE``), one JSON line a minute:

- ``store_ms``: per statement kind (``insert <table>``, or ``query``/``command`` with the first words
  of the SQL and its ``FROM``), ``[calls, mean ms, rows inserted]`` over the minute, timed inside the
  store's lock (the engine's time, not the wait for the lock);
- ``cpu_s``: CPU seconds per thread name (from ``/proc/self/task``, trailing digits dropped: the
  engine names its threads ``MergeMutate``, ``BgSchPool``, ...; Python's are all ``python``);
- ``objects``: Python objects the garbage collector tracks;
- with ``--tracemalloc FRAMES``, from the end of the steady run's warm-up: ``traced_mb``, what
  Python allocated since then and still holds, and ``growth``, the ten call sites (``FRAMES`` deep)
  whose held memory grew most since the first traced minute, ``[site, MB, blocks]``. Tracing slows
  the process: read its latencies as a traced run's.

The last line covers the part of a minute before the run ended (its ``minute`` says when).

This is how runs 14-16 in docs/benchmarks.md found where the consumer's cycle spent its time.
"""

from __future__ import annotations

import gc
import json
import os
import re
import threading
import time
import tracemalloc
from collections import defaultdict
from typing import Any

from privaudit.store import Store

_TIMED = ("query", "command", "insert", "insert_arrow")


class MinuteProfile:
    def __init__(self, path: str, every_s: float = 60.0, trace_frames: int = 0) -> None:
        self.path, self.every_s, self.trace_frames = path, every_s, trace_frames
        self._baseline: tracemalloc.Snapshot | None = None
        self._calls: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-profile", daemon=True)

    def attach(self, store: Store) -> None:
        """Time every statement ``store`` sends from now on."""
        store.client = _Timed(store.client, self)

    def start(self) -> None:
        self._thread.start()

    def trace(self) -> None:
        """Trace Python's allocations from now on (with ``trace_frames``), for ``growth``."""
        if self.trace_frames:
            tracemalloc.start(self.trace_frames)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def note(self, op: str, first: Any, rows: int, seconds: float) -> None:
        if op.startswith("insert"):
            key = f"insert {str(first).split('.')[-1]}"
        else:
            sql = re.sub(r"\s+", " ", str(first))
            source = re.search(r"FROM (\S+)", sql)
            key = f"{op} {sql[:40]}... FROM {source.group(1) if source else '-'}"
        with self._lock:
            entry = self._calls[key]
            entry[0] += 1
            entry[1] += seconds
            entry[2] += rows

    def _sample(self) -> None:
        start, last_cpu = time.monotonic(), _thread_cpu()
        last_calls: dict[str, Any] = {}
        with open(self.path, "w") as out:
            stopped = False
            while not stopped:  # a line a minute, and one for the part-minute at the end
                stopped = self._stop.wait(self.every_s)
                cpu = _thread_cpu()
                with self._lock:
                    calls = {k: list(v) for k, v in self._calls.items()}
                store_ms = {}
                for key, (n, seconds, rows) in calls.items():
                    n0, s0, r0 = last_calls.get(key, (0, 0.0, 0))
                    if n > n0:
                        store_ms[key] = [n - n0, round(1000 * (seconds - s0) / (n - n0), 2), rows - r0]
                out.write(json.dumps({
                    "minute": round((time.monotonic() - start) / 60, 1), "store_ms": store_ms,
                    "cpu_s": {k: round(v - last_cpu.get(k, 0.0), 1) for k, v in cpu.items()
                              if v - last_cpu.get(k, 0.0) >= 0.1},
                    "objects": len(gc.get_objects()),
                    **self._traced(),
                }) + "\n")
                out.flush()
                last_cpu, last_calls = cpu, calls

    def _traced(self) -> dict[str, Any]:
        if not tracemalloc.is_tracing():
            return {}
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        out: dict[str, Any] = {"traced_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1)}
        if self._baseline is None:
            self._baseline = snapshot
            return out
        top = snapshot.compare_to(self._baseline, "traceback")[:10]
        out["growth"] = [[" < ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in stat.traceback),
                          round(stat.size_diff / 2**20, 2), stat.count_diff] for stat in top]
        return out


class _Timed:
    """A clickhouse-connect client whose statements are timed into a :class:`MinuteProfile`."""

    def __init__(self, inner: Any, profile: MinuteProfile) -> None:
        self._inner, self._profile = inner, profile

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in _TIMED:
            return attr

        def timed(first: Any, *args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return attr(first, *args, **kwargs)
            finally:
                data = args[0] if args else None
                rows = len(data) if name == "insert_arrow" and data is not None else (
                    len(data[0]) if name == "insert" and data else 0)
                self._profile.note(name, first, rows, time.perf_counter() - began)

        return timed


def _thread_cpu() -> defaultdict[str, float]:
    out: defaultdict[str, float] = defaultdict(float)  # CPU seconds per thread name
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:  # the thread ended
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[re.sub(r"\d+$", "", name)] += (int(fields[11]) + int(fields[12])) / tick
    return out
