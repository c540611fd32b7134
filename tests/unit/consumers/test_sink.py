"""The sink's inserts, recorded by a store that keeps them (the engine is in the integration tests)."""

from __future__ import annotations

import pyarrow as pa

from privaudit.bus import Record
from privaudit.checker import Checker
from privaudit.consumers.batch import process
from privaudit.consumers.sink import Sink
from privaudit.policy import load_policy
from privaudit.producers.simulator import SimulationConfig, simulate
from privaudit.schemas import Codec
from privaudit.store.client import BuildsInserts


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
        (table, f"audit/{group}/{table}")
        for table in ("events", "violations", "subject_state", "emitter_seqs", "dead_letters", "ledger")
    ]
    rows = {t: n for t, n, _ in store.inserts}
    assert rows["events"] == 900 and rows["dead_letters"] == 3 and rows["ledger"] == 3
    assert rows["violations"] == sum(len(b.violations["event_id"]) for b in batches) > 0


def test_one_range_keeps_the_token_it_had_before_ranges_were_grouped():
    policy, codec = load_policy(), Codec()
    events = list(simulate(SimulationConfig(events=50, seed=3), policy))
    batch = process([Record("t", 4, 7 + i, None, codec.encode(e), 0) for i, e in enumerate(events)], codec,
                    Checker(policy, bulk_access=False))
    store = Recorded()
    Sink(store).load([batch])  # type: ignore[arg-type]
    assert store.inserts[0][2] == "audit/t/4/7-56/events"


class Built(Recorded):
    """A store that records what each insert would send: an Arrow table, or columns for the slow path."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: dict[str, object] = {}

    insert = BuildsInserts.insert  # builds the data as every store does, then hands it to insert_data

    def insert_data(self, table, data, *, token=None):
        self.sent[table] = data

    def query(self, sql, parameters=None, *, readonly=False):
        return [], []


def test_every_insert_of_a_batch_and_its_progress_is_sent_as_arrow():
    """Columns the store has no Arrow type for fall back to clickhouse-connect's slower path; a
    column the sink writes that the table's description lacks did so silently for ``progress``."""
    policy, codec = load_policy(), Codec()
    events = list(simulate(SimulationConfig(events=300, seed=5, violation_rate=0.3), policy))
    records = [Record("t", 0, i, None, codec.encode(e), 0) for i, e in enumerate(events)]
    records.append(Record("t", 0, len(events), None, b"not avro", 0))
    batch = process(records, codec, Checker(policy, bulk_access=False))
    batch.high_watermark = len(records)
    store = Built()
    sink = Sink(store)  # type: ignore[arg-type]
    sink.write([batch])
    sink.attest({("t", 0): (len(records), len(records), 0)}, events[-1].occurred_at, "consumer-1")
    assert set(store.sent) == {"batches", "events", "violations", "subject_state", "dead_letters", "ledger",
                               "emitter_seqs", "progress", "caught_up"}
    assert {table: type(data).__name__ for table, data in store.sent.items() if not isinstance(data, pa.Table)} == {}
