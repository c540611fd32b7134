"""An event's content in one canonical form: what "the same event" means (docs/contract.md, "Content").

It is defined over what ``events`` stores, and the engine computes it too (:func:`content_sql`):
it sits below the contract and the store, which both use it.

The content is the event's fields as ``privaudit.events`` stores them (:data:`CONTENT_FIELDS`, in
that order), not the framing of the record that carried them (schema id, writer schema, Kafka
offset, headers). Each field is written as

- ``~`` for a null;
- ``<n>:<text>`` for a string (``n`` its length in code points), an event id in its lower-case
  8-4-4-4-12 form;
- ``#<n>`` for an integer, ``occurred_at`` as milliseconds since the Unix epoch (UTC);
- ``T`` or ``F`` for a boolean;
- ``[`` the items as strings ``]`` for an array, in the stored order;

and the fields are joined with nothing between them (the lengths make it unambiguous). The content
hash is SHA-256 of that text in UTF-8. The same text can be built inside ClickHouse from the stored
columns (:func:`content_sql`), so ``privaudit verify`` recomputes the hash of every stored row in the
engine; tests check that both agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

#: The stored fields an event's content is made of, in order (``events`` columns; ``country`` is
#: the recipient's or destination's country, ``record_count`` 1 when the event gave none).
CONTENT_FIELDS: tuple[str, ...] = (
    "event_id", "type", "occurred_at", "service", "subject_id", "policy_version", "actor_id", "actor_type",
    "processor_id", "from_processor_id", "recipient_id", "country", "action", "purpose", "task", "legal_basis",
    "consent_id", "data_items", "source_ip", "record_count", "reason", "scope", "target", "granted", "purposes",
    "change",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _field(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return f"{len(value)}:{value}"
    if value is None:
        return "~"
    if kind is list or kind is tuple:
        return "[" + "".join(f"{len(item)}:{item}" for item in value) + "]"
    if kind is bool:
        return "T" if value else "F"
    if kind is int:
        return f"#{value}"
    if kind is datetime:
        if value.tzinfo is None:  # as the store gives it back: UTC
            value = value.replace(tzinfo=UTC)
        return f"#{(value - _EPOCH) // _MS}"
    if kind is UUID:
        return f"36:{value}"
    raise TypeError(f"no canonical form for a {kind.__name__}")


_MS = datetime.resolution * 1000


def content_text(values: Sequence[Any]) -> str:
    """The canonical text of one event's content; ``values`` in :data:`CONTENT_FIELDS` order
    (an event id as text is taken as it is: the contract keeps it lower-case)."""
    return "".join(map(_field, values))


def content_hash(values: Sequence[Any]) -> bytes:
    """SHA-256 of the canonical text (32 bytes)."""
    return hashlib.sha256(content_text(values).encode("utf-8")).digest()


def _string_sql(column: str) -> str:
    return f"concat(toString(lengthUTF8({column})), ':', {column})"


#: How each field's text is made in ClickHouse SQL (the column types of ``events``).
_FIELD_SQL: dict[str, str] = {
    "event_id": "concat('36:', toString(event_id))",
    "occurred_at": "concat('#', toString(toUnixTimestamp64Milli(occurred_at)))",
    "record_count": "concat('#', toString(record_count))",
    "granted": "multiIf(isNull(granted), '~', assumeNotNull(granted), 'T', 'F')",
    "data_items": "concat('[', arrayStringConcat(arrayMap(x -> {s}, data_items)), ']')",
    "purposes": "concat('[', arrayStringConcat(arrayMap(x -> {s}, purposes)), ']')",
    "type": _string_sql("type"),
    "service": _string_sql("service"),
    "subject_id": _string_sql("subject_id"),
}


def field_sql(name: str) -> str:
    """A ClickHouse expression giving one field's canonical text, from its column in ``events``."""
    if name in _FIELD_SQL:
        return _FIELD_SQL[name].replace("{s}", _string_sql("x"))
    return f"if(isNull({name}), '~', {_string_sql(f'assumeNotNull({name})')})"  # a Nullable string


def content_sql() -> str:
    """A ClickHouse expression giving the canonical text of a row of ``events`` (or ``rewrites``)."""
    return "concat(" + ", ".join(field_sql(name) for name in CONTENT_FIELDS) + ")"
