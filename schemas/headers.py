"""The Kafka headers of the contract: who emitted a record, and its number in that emitter's order.

``privaudit.emitter`` (a UUID, one per emitter and spool) and ``privaudit.seq`` (1, 2, 3, ... in
call order, as decimal text); written by :class:`~privaudit.producers.emitter.AuditEmitter`
(:mod:`privaudit.producers.sequence`), read by the consumer. A record without them (another
producer) is audited as any other and counted as unsequenced.
"""

from __future__ import annotations

from collections.abc import Sequence

HEADER_EMITTER = "privaudit.emitter"
HEADER_SEQ = "privaudit.seq"


def parse(headers: Sequence[tuple[str, bytes]] | None) -> tuple[str, int] | None:
    """``(emitter, seq)`` from a record's headers; None when it has none (another producer) or they
    are not ours to read (a seq that is not a positive number)."""
    if not headers:
        return None
    emitter = seq = None
    for name, value in headers:
        if name == HEADER_EMITTER:
            emitter = value
        elif name == HEADER_SEQ:
            seq = value
    if emitter is None or seq is None or not seq.isdigit() or len(seq) > 19 or len(emitter) > 64:
        return None
    number = int(seq)
    return (emitter.decode("utf-8", "replace"), number) if number > 0 else None
