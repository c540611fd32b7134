"""Inserts as Arrow: the columns of a known table turned into an Arrow table in C++.

clickhouse-connect's Native serialisation walks every value in Python (most of it building the
dictionaries of ``LowCardinality`` columns); ``pyarrow`` converts the same lists in C++ and
ClickHouse parses Arrow itself, which is cheaper (``bench/insert_formats.py``, docs/benchmarks.md).
The Arrow type of each column follows from its ClickHouse type in :mod:`.ddl`; ClickHouse converts
strings to ``UUID`` and ``LowCardinality`` on its side.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from . import ddl

_SCALARS = {
    "String": pa.string(),
    "UUID": pa.string(),
    "Bool": pa.bool_(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Date": pa.date32(),
}
_WRAPPER = re.compile(r"^(?:LowCardinality|Nullable)\((.*)\)$")


def arrow_type(kind: str) -> pa.DataType | None:
    """The Arrow type for a ClickHouse column type, or None when there is no plain one."""
    kind = kind.split(" DEFAULT ")[0].strip()
    while (m := _WRAPPER.match(kind)) is not None:
        kind = m.group(1)
    if kind.startswith("Array(") and kind.endswith(")"):
        inner = arrow_type(kind[6:-1])
        return pa.list_(inner) if inner is not None else None
    if kind.startswith("DateTime64(3"):
        return pa.timestamp("ms", tz="UTC")
    if kind.startswith("FixedString(") and kind.endswith(")"):
        return pa.binary(int(kind[12:-1]))
    return _SCALARS.get(kind)


def _schemas() -> dict[str, dict[str, pa.DataType]]:
    out = {}
    for table in ddl.ALL_TABLES:
        types = {name: arrow_type(kind) for name, kind in table.columns}
        out[table.name] = {name: t for name, t in types.items() if t is not None}
    return out


SCHEMAS = _schemas()


def to_arrow(table: str, columns_data: Sequence[Sequence[Any]], column_names: Sequence[str]) -> pa.Table | None:
    """``columns_data`` as an Arrow table, or None when ``table`` or one of its columns has no Arrow
    mapping here (the caller inserts those the usual way)."""
    schema = SCHEMAS.get(table)
    if schema is None or any(name not in schema for name in column_names):
        return None
    pairs = zip(column_names, columns_data, strict=True)
    return pa.table({name: pa.array(values, type=schema[name]) for name, values in pairs})
