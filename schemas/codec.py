"""Bytes <-> events, in either of the two framings the contract allows.

- **single-object** (Avro spec, the default): ``C3 01``, the 8-byte little-endian CRC-64-AVRO
  fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary datum.
  fastavro writes the datum only; the header is written here.
- **confluent** (for users with a schema registry): ``00``, a 4-byte big-endian schema id, then
  the datum.

Decoding recognises the framing by its first bytes, finds the writer schema (any released
version or the working one), resolves it against the working schema, and validates the result
with the pydantic models. Whatever is wrong (unknown framing, unknown fingerprint or id, a
truncated datum, trailing bytes, a datum that does not fit its schema, a record that breaks the
contract) raises :class:`DecodeError` or :class:`EventError` with a one-line reason. The one
exception is a schema registry (``SchemaSet(registry=...)``) that cannot answer for now
(:class:`RegistryUnavailable`) or refuses us (:class:`RegistryError`): those are not the record's
fault, and are raised for the caller to wait out or stop on.
"""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any, Literal

from fastavro import schemaless_reader, schemaless_writer
from pydantic import ValidationError

from privaudit.errors import DecodeError, EventError, excerpt

from .bounds import check_arrays
from .identifiers import may_hold_rrn
from .models import MAX_ITEMS, MODELS, Event, describe, mask_event, refuse_future
from .registry import SchemaSet, WriterSchema

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
Framing = Literal["single-object", "confluent"]
_ID = struct.Struct(">I")
#: A record larger than this is refused before it is decoded (``--max-record-bytes``).
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024


class Codec:
    """Encode events for Kafka and decode them back; one instance per process is enough."""

    def __init__(
        self,
        schemas: SchemaSet | None = None,
        *,
        framing: Framing = "single-object",
        confluent_ids: dict[str, int] | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        self.schemas = schemas or SchemaSet()
        self.max_record_bytes = max_record_bytes
        if framing not in ("single-object", "confluent"):
            raise ValueError(f"unknown framing {framing!r}")
        self.framing = framing
        working = self.schemas.working
        if framing == "confluent":
            # The id written must be one whose registered schema is what we write.
            ids = confluent_ids or {
                s.event_type: i
                for i, s in self.schemas.by_confluent_id.items()
                if s.fingerprint == working[s.event_type].fingerprint
            }
            missing = [t for t in working if t not in ids]
            if missing:
                raise ValueError(f"no Confluent schema id for {', '.join(missing)}")
            self._writers = {t: self.schemas.by_confluent_id.get(ids[t], working[t]) for t in working}
            self._headers = {t: CONFLUENT_MAGIC + _ID.pack(ids[t]) for t in working}
        else:
            self._writers = dict(working)
            self._headers = {t: SINGLE_OBJECT_MAGIC + s.fingerprint for t, s in working.items()}

    # -- encoding -------------------------------------------------------------------------

    def encode(self, event: Event) -> bytes:
        """The framed Avro bytes of a validated event."""
        record = event.model_dump(exclude={"type"})
        return self.encode_record(event.type, record)

    def encode_record(self, event_type: str, record: dict[str, Any]) -> bytes:
        """Frame and encode a plain record (already shaped like the schema)."""
        buf = BytesIO()
        buf.write(self._headers[event_type])
        schemaless_writer(buf, self._writers[event_type].parsed, record)
        return buf.getvalue()

    # -- decoding -------------------------------------------------------------------------

    def decode(self, data: bytes | None, *, not_after_ms: int | None = None) -> Event:
        """Decode and validate: an event, or :class:`DecodeError` / :class:`EventError`. An event
        dated after ``not_after_ms`` (epoch milliseconds: now plus the clock-skew allowance) breaks
        the contract; a resident registration number in a free-text field comes back masked."""
        if data is None:
            raise DecodeError("a tombstone: the record has no value (null), so no event")
        event_type, record = self.decode_record(data)
        try:
            event = MODELS[event_type].model_validate(record)
        except ValidationError as exc:
            raise EventError(f"{event_type}: {describe(exc)}") from exc
        if not_after_ms is not None:
            refuse_future(event, not_after_ms)
        return mask_event(event) if may_hold_rrn(data) else event

    def decode_record(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Decode without contract validation: ``(event type, record as the working schema)``. Its
        size and its arrays' lengths are checked before anything is built from it."""
        if len(data) > self.max_record_bytes:
            raise DecodeError(f"a record of {len(data):,} bytes, over the limit of {self.max_record_bytes:,} "
                              "(--max-record-bytes): refused before decoding")
        writer, offset = self.writer_of(data)
        check_arrays(data, offset, writer.parsed, MAX_ITEMS, writer.label)
        reader = self.schemas.working[writer.event_type]
        buf = BytesIO(data)
        buf.seek(offset)
        try:
            record = schemaless_reader(
                buf, writer.parsed, None if reader is writer else reader.parsed
            )
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, its own...
            raise DecodeError(
                f"{writer.label}: datum does not match its schema ({type(exc).__name__}: {excerpt(str(exc), 200)})"
            ) from exc
        if buf.tell() != len(data):
            raise DecodeError(
                f"{writer.label}: {len(data) - buf.tell()} trailing bytes after the datum"
            )
        if not isinstance(record, dict):
            raise DecodeError(f"{writer.label}: datum is not a record")
        return writer.event_type, record

    def writer_of(self, data: bytes) -> tuple[WriterSchema, int]:
        """The writer schema named by the framing header, and where the datum starts."""
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < 10:
                raise DecodeError(f"truncated single-object header ({len(data)} bytes)")
            fp = bytes(data[2:10])
            writer = self.schemas.by_fingerprint.get(fp)
            if writer is None:
                raise DecodeError(f"unknown schema fingerprint {fp.hex()}")
            return writer, 10
        if data[:1] == CONFLUENT_MAGIC:
            if len(data) < 5:
                raise DecodeError(f"truncated Confluent header ({len(data)} bytes)")
            (schema_id,) = _ID.unpack_from(data, 1)
            return self.schemas.confluent_writer(schema_id), 5
        head = bytes(data[:2]).hex() or "nothing"
        raise DecodeError(
            f"unknown framing: starts with {head}, expected c301 (single-object) or 00 (Confluent)"
        )
