"""The sink's inserts, recorded by a store that keeps them (the engine is in the integration tests)."""

from __future__ import annotations

from privaudit.bus import Record
from privaudit.checker import Checker
from privaudit.consumers.batch import process
from privaudit.consumers.sink import Sink
from privaudit.policy import load_policy
from privaudit.producers.simulator import SimulationConfig, simulate
from privaudit.schemas import Codec


class Recorded:
    database = "privaudit"

    def __init__(self) -> None:
        self.inserts: list[tuple[str, int, str | None]] = []

    def insert(self, table, columns_data, column_names, *, token=None):
        self.inserts.append((table, len(columns_data[0]), token))


def test_the_ranges_of_one_poll_are_loaded_with_one_insert_per_table_and_the_groups_token():
    policy, codec = load_policy(), Codec()
    events = list(simulate(SimulationConfig(events=900, seed=3, violation_rate=0.3), policy))
    batches = []
    for partition in range(3):
        chunk = events[partition::3]
        records = [Record("t", partition, 10 * partition + i, None, codec.encode(e), 0) for i, e in enumerate(chunk)]
        records.append(Record("t", partition, 10 * partition + len(chunk), None, b"not avro", 0))
        batches.append(process(records, codec, Checker(policy, bulk_access=False)))
    store = Recorded()
    Sink(store).load(batches)  # type: ignore[arg-type]
    group = "t/0/0-300+t/1/10-310+t/2/20-320"
    assert [(t, tok) for t, _, tok in store.inserts] == [
        (table, f"audit/{group}/{table}") for table in ("events", "violations", "subject_state", "dead_letters")
    ]
    rows = {t: n for t, n, _ in store.inserts}
    assert rows["events"] == 900 and rows["dead_letters"] == 3
    assert rows["violations"] == sum(len(b.violations["event_id"]) for b in batches) > 0


def test_one_range_keeps_the_token_it_had_before_ranges_were_grouped():
    policy, codec = load_policy(), Codec()
    events = list(simulate(SimulationConfig(events=50, seed=3), policy))
    batch = process([Record("t", 4, 7 + i, None, codec.encode(e), 0) for i, e in enumerate(events)], codec,
                    Checker(policy, bulk_access=False))
    store = Recorded()
    Sink(store).load([batch])  # type: ignore[arg-type]
    assert store.inserts[0][2] == "audit/t/4/7-56/events"
