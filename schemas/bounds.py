"""Bounds checked on a record's bytes before any object is built from them.

A record's size is bounded by the codec (``max_record_bytes``). Within that size, an Avro array
can still announce a million items of one byte each (a million empty strings: ~1 MiB on the wire,
over a gigabyte once built and validated). :func:`longest_array` walks the datum with the writer
schema, reading lengths and block counts only, and stops as soon as an array passes the limit.
Every array item takes at least one byte, so a datum no longer than the limit cannot hold a longer
array; the codec walks only the longer ones.
"""

from __future__ import annotations

from typing import Any

from privaudit.errors import DecodeError


class TooLong(Exception):
    """An array of the datum holds more items than allowed (raised out of the walk)."""

    def __init__(self, field: str, at_least: int) -> None:
        super().__init__(field, at_least)
        self.field, self.at_least = field, at_least


def check_arrays(data: bytes, start: int, schema: Any, limit: int, label: str) -> None:
    """:class:`DecodeError` when an array in the datum at ``data[start:]`` has more than ``limit``
    items; nothing is built. A datum that ends early is left to the decoder to report."""
    if len(data) - start <= limit:
        return
    try:
        _skip(schema, _Reader(data, start), limit, {}, "")
    except TooLong as long:
        raise DecodeError(f"{label}: {long.field} holds more than {limit} items (at least {long.at_least:,}): "
                          "refused before decoding") from None
    except (IndexError, KeyError, ValueError):
        return  # malformed: fastavro's reading says how, with its own reason


class _Reader:
    __slots__ = ("data", "at")

    def __init__(self, data: bytes, at: int) -> None:
        self.data, self.at = data, at

    def long(self) -> int:
        data, at, shift, acc = self.data, self.at, 0, 0
        while True:
            byte = data[at]
            at += 1
            acc |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")
        self.at = at
        return (acc >> 1) ^ -(acc & 1)

    def skip(self, n: int) -> None:
        if n < 0 or self.at + n > len(self.data):
            raise ValueError("length past the end")
        self.at += n


def _skip(schema: Any, r: _Reader, limit: int, names: dict[str, Any], path: str) -> None:
    if isinstance(schema, str):
        if schema in ("string", "bytes"):
            r.skip(r.long())
        elif schema in ("int", "long", "boolean"):
            if schema == "boolean":
                r.skip(1)
            else:
                r.long()
        elif schema == "float":
            r.skip(4)
        elif schema == "double":
            r.skip(8)
        elif schema != "null":
            _skip(names[schema], r, limit, names, path)
        return
    if isinstance(schema, list):  # a union: the branch's index, then the branch
        _skip(schema[r.long()], r, limit, names, path)
        return
    kind = schema["type"]
    if "name" in schema:
        names[schema["name"]] = schema
    if kind == "record":
        for field in schema["fields"]:
            _skip(field["type"], r, limit, names, f"{path}.{field['name']}" if path else field["name"])
    elif kind == "enum":
        r.long()
    elif kind == "fixed":
        r.skip(schema["size"])
    elif kind in ("array", "map"):
        total = 0
        while True:
            count = r.long()
            if count == 0:
                break
            if count < 0:  # a block with its size in bytes: skippable without reading its items
                count = -count
                r.skip(r.long())
                total += count
                if total > limit:
                    raise TooLong(path, total)
                continue
            total += count
            if total > limit:
                raise TooLong(path, total)
            for _ in range(count):
                if kind == "map":
                    r.skip(r.long())
                _skip(schema["values" if kind == "map" else "items"], r, limit, names, path)
    else:
        _skip(kind, r, limit, names, path)  # {"type": "long", "logicalType": ...} and the like
