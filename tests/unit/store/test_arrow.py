"""Inserts as Arrow: every column of the tables the consumer and the dispatcher write has a type."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from privaudit.store import ddl
from privaudit.store.arrow import SCHEMAS, arrow_type, to_arrow


@pytest.mark.parametrize("table", ddl.ALL_TABLES, ids=lambda t: t.name)
def test_every_written_column_has_an_arrow_type(table):
    unmapped = [name for name, kind in table.columns if arrow_type(kind) is None]
    if table is ddl.USAGE_DAILY:  # filled by its materialized view only
        assert unmapped == ["events", "subjects"]
    else:
        assert unmapped == []


@pytest.mark.parametrize(("kind", "expected"), [
    ("LowCardinality(Nullable(String))", pa.string()),
    ("Array(LowCardinality(String))", pa.list_(pa.string())),
    ("DateTime64(3, 'UTC') DEFAULT now64(3)", pa.timestamp("ms", tz="UTC")),
    ("Nullable(DateTime64(3, 'UTC'))", pa.timestamp("ms", tz="UTC")),
    ("Nullable(Bool)", pa.bool_()),
    ("UInt16", pa.uint16()),
    ("AggregateFunction(uniqExact, UUID)", None),
])
def test_clickhouse_types_map_to_arrow(kind, expected):
    assert arrow_type(kind) == expected


def test_columns_become_an_arrow_table_or_none_when_one_is_unknown():
    at = datetime(2026, 11, 29, 12, 0, 0, 123000, tzinfo=UTC)
    data = to_arrow("progress", [["t"], [3], [10], [at]],
                    ["kafka_topic", "kafka_partition", "next_offset", "max_occurred_at"])
    assert data is not None and data.num_rows == 1 and data.column("max_occurred_at")[0].as_py() == at
    assert to_arrow("progress", [[1]], ["no_such_column"]) is None
    assert to_arrow("no_such_table", [[1]], ["x"]) is None
    with pytest.raises(pa.ArrowInvalid):
        to_arrow("progress", [[70_000]], ["kafka_partition"])  # UInt16; the store turns it into StoreError
    assert SCHEMAS["events"]["event_id"] == pa.string()  # ClickHouse parses the UUID text
