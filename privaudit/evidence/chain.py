"""What each offset of a partition contributes to its hash chain (docs/evidence.md).

In each partition of each life of a topic, in offset order, ``h_n = SHA-256(h_(n-1) || n || record_n)``
with ``h`` before the first offset :data:`GENESIS`, ``n`` the offset as 8 bytes big-endian and
``record_n`` the bytes below, one per offset whatever became of it:

- an event stored in ``events``: ``E`` + its content hash + its checked policy version + the hash of
  its verdicts (the ``violations`` rows it produced);
- a dead letter: ``D`` + its kind + its reason;
- a repeat (the same event id with the same content, stored once): ``R`` + the content hash;
- a rewrite (the same event id with other content, kept aside in ``rewrites``): ``W`` + its
  content hash + the hash of its verdicts (its PA-016);
- an offset the broker did not return (a transaction marker, or compacted away): ``A``.

Strings are written as their UTF-8 length (4 bytes big-endian) and bytes. Everything a record holds
is recomputed from the stored rows by ``privaudit verify``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

GENESIS = bytes(32)


class RecordKind:
    EVENT = b"E"
    DEAD_LETTER = b"D"
    REPEAT = b"R"
    REWRITE = b"W"
    ABSENT = b"A"


def _lp(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


EMPTY_VERDICTS = hashlib.sha256(b"").digest()


def verdicts_hash(verdicts: Iterable[tuple[str, str, str, str]]) -> bytes:
    """The hash of one event's verdicts, each ``(rule, severity, message, policy version)``, in
    sorted order (what ``violations`` holds for it, in any order)."""
    items = sorted(verdicts)
    if not items:
        return EMPTY_VERDICTS
    h = hashlib.sha256()
    for verdict in items:
        for part in verdict:
            h.update(_lp(part))
    return h.digest()


def event_record(kind: bytes, content_hash: bytes, checked_version: str = "", verdicts: bytes = EMPTY_VERDICTS
                 ) -> bytes:
    """The record of an event (``E``), a rewrite (``W``) or a repeat (``R``, with the defaults)."""
    if kind == RecordKind.REPEAT:
        return kind + content_hash
    return kind + content_hash + _lp(checked_version) + verdicts


def dead_letter_record(kind: str, reason: str) -> bytes:
    return RecordKind.DEAD_LETTER + _lp(kind) + _lp(reason)


def link(head: bytes, offset: int, record: bytes) -> bytes:
    return hashlib.sha256(head + offset.to_bytes(8, "big") + record).digest()


@dataclass
class Chain:
    """One partition's chain as it grows, offset by offset (no offset may be skipped)."""

    head: bytes = GENESIS
    next_offset: int | None = None  # None: the first offset added starts it

    def add(self, offset: int, record: bytes) -> None:
        if self.next_offset is not None and offset != self.next_offset:
            raise ValueError(f"chain: offset {offset} follows {self.next_offset - 1}")
        self.head = link(self.head, offset, record)
        self.next_offset = offset + 1
