"""What a partition remembers for the evidence: its chain's head and the event ids it stored lately.

Whether a record repeats an event, rewrites one or brings a new one must come out the same when a
range is processed again after a crash (its chain, which is signed, is recomputed then), so it
depends only on what the partition stored before the record, in the same life of its topic: the
event ids of the ``window`` offsets before it. The consumer restores that at assignment from
``events`` and the chain's head from ``ledger`` (:meth:`Sink.restore_seen`). An id repeated from
further back, or in another partition, is stored again at its own position (nothing is replaced)
and found by ``privaudit verify`` (docs/evidence.md).
"""

from __future__ import annotations

from collections import deque

from privaudit.evidence import Chain

#: How many offsets back a partition looks for an event id: about 40 MB of memory per partition
#: (an id, its hash and offset, ~200 bytes in Python), and ten minutes of a busy partition.
DEFAULT_WINDOW = 200_000


class Seen:
    def __init__(self, window: int = DEFAULT_WINDOW, chain: Chain | None = None) -> None:
        self.window = window
        self.chain = chain or Chain()
        self._ids: dict[str, tuple[bytes, int]] = {}  # event id -> (content hash, offset) of its stored copy
        self._order: deque[tuple[int, str]] = deque()

    def lookup(self, event_id: str, offset: int) -> tuple[bytes, int] | None:
        """The stored copy of ``event_id`` within the window before ``offset``: (content hash, offset)."""
        found = self._ids.get(event_id)
        if found is not None and found[1] >= offset - self.window:
            return found
        return None

    def remember(self, event_id: str, content_hash: bytes, offset: int) -> None:
        self._ids[event_id] = (content_hash, offset)
        self._order.append((offset, event_id))

    def trim(self, offset: int) -> None:
        """Forget what lies out of the window of ``offset`` (lookups ignore it already)."""
        limit, order, ids = offset - self.window, self._order, self._ids
        while order and order[0][0] < limit:
            old, event_id = order.popleft()
            if ids.get(event_id, (b"", -1))[1] == old:
                del ids[event_id]

    def __len__(self) -> int:
        return len(self._ids)
