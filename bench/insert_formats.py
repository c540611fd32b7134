"""How an insert of consumer rows into the embedded ClickHouse costs the consumer's thread.

    python bench/insert_formats.py --json

Rows are real ones: simulated events laid out by the consumer's own code (``consumers.batch``).
For each batch size, best of ``--rounds``, each insert into ``events`` with its own token:
- ``native_ms`` / ``arrow_ms``: the insert's wall time through clickhouse-connect's Native
  serialisation (``client.insert``) and as an Arrow table (``Store.insert``, what the consumer does);
- ``*_python_share``: while 5 such inserts of the largest size run on a second thread, how much
  pure-Python work the first thread gets done, against the same work alone (1.0: the insert took
  nothing from it; it measures how long the insert holds the GIL).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

from privaudit.bus import Record
from privaudit.checker import Checker
from privaudit.consumers.batch import process
from privaudit.policy import load_policy
from privaudit.producers.simulator import SimulationConfig, simulate
from privaudit.schemas import Codec
from privaudit.store import Store
from privaudit.store.arrow import to_arrow


def _rows(n: int) -> dict[str, list]:
    codec = Codec()
    records = [Record("privaudit.events", 0, i, None, codec.encode(e), 0)
               for i, e in enumerate(simulate(SimulationConfig(events=n, seed=11)))]
    return process(records, codec, Checker(load_policy())).events


def _spin(seconds: float) -> int:
    began, n = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,5000,20000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="privaudit-insert-"))
    result: dict = {"sizes": {}}
    tokens = iter(range(10**9))
    try:
        store = Store.connect(f"chdb://{work / 'ch'}")
        store.migrate()
        rows = _rows(max(sizes))
        names = list(rows)

        def native(n: int) -> None:
            store.client.insert("privaudit.events", [rows[c][:n] for c in names], column_names=names,
                                column_oriented=True, settings={"insert_deduplication_token": f"n{next(tokens)}"})

        def arrow(n: int) -> None:
            store.insert("events", [rows[c][:n] for c in names], names, token=f"a{next(tokens)}")

        for n in sizes:
            timings = {}
            for label, fn in (("native", native), ("arrow", arrow)):
                best = float("inf")
                for _ in range(args.rounds):
                    began = time.perf_counter()
                    fn(n)
                    best = min(best, time.perf_counter() - began)
                timings[f"{label}_ms"] = round(best * 1000, 1)
            result["sizes"][str(n)] = timings
        alone = _spin(1.0)
        for label, fn in (("native", native), ("arrow", arrow)):
            thread = threading.Thread(target=lambda f=fn: [f(max(sizes)) for _ in range(5)])
            began, done = time.perf_counter(), 0
            thread.start()
            while thread.is_alive():
                done += _spin(0.02)
            result[f"{label}_python_share"] = round(done / (alone * (time.perf_counter() - began)), 2)
        result["arrow_columns_built_us_per_row"] = round(_time_build(rows, names) * 1e6 / max(sizes), 2)
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


def _time_build(rows: dict[str, list], names: list[str]) -> float:
    began = time.perf_counter()
    to_arrow("events", [rows[c] for c in names], names)
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
