"""What the consumer keeps per assigned partition, in one object rather than in parallel dicts.

A :class:`Partition` is made when the partition is assigned (start or rebalance) and dropped when
it is revoked: its checker, the offset reading continues from, the journal's ranges still to
replay, the records polled and not cut into ranges yet, and, with a bound on the state held, the
subjects its checker holds (:class:`HeldSubjects`). A batch handed to the loader remembers the
:class:`Partition` objects it came from; a partition given a new object since (revoked, perhaps
given back) is neither committed nor counted when the batch settles.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from privaudit.bus import TP, Record
from privaudit.checker import Checker

from .seen import Seen


class HeldSubjects:
    """The subjects whose state one partition's checker holds, least recently seen first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._order: OrderedDict[str, None] = OrderedDict()

    def see(self, subjects: set[str]) -> set[str]:
        """Mark ``subjects`` as just seen; those not held before (to be loaded)."""
        order, missing = self._order, set()
        for subject in subjects:
            if subject in order:
                order.move_to_end(subject)
            else:
                order[subject] = None
                missing.add(subject)
        return missing

    def evict(self) -> list[str]:
        """Drop the least recently seen beyond the limit (never those of the batch just seen,
        as long as the limit is above a batch's subjects); the dropped ones."""
        order, gone = self._order, []
        while len(order) > self.limit:
            gone.append(order.popitem(last=False)[0])
        return gone


@dataclass(eq=False)
class Partition:
    tp: TP
    checker: Checker
    next_offset: int  # the next offset to process: everything below was cut into ranges
    replay: deque[tuple[int, int]]  # ranges planned before and not committed: replayed exactly
    held: HeldSubjects | None = None  # None: the checker holds every subject (restored at assignment)
    incarnation: int = 0  # the life of the topic being read (``incarnations``): offsets are its own
    buffer: list[Record] = field(default_factory=list)  # polled, not cut into ranges yet
    seen: Seen = field(default_factory=Seen)  # its chain's head and the event ids it stored lately

    def accept(self, record: Record) -> None:
        """Keep ``record`` unless it is at or below what is held or processed (a re-delivery)."""
        buffer = self.buffer
        if record.offset > (buffer[-1].offset if buffer else self.next_offset - 1):
            buffer.append(record)

    def take_ranges(self) -> list[tuple[list[Record], bool]]:
        """Cut the ranges ready to process off the front of the buffer, each with whether it
        replays a range planned before (those are cut exactly at the journal's boundaries, and
        wait until all of their records are here)."""
        buffer, replay, chunks = self.buffer, self.replay, []
        while buffer:
            replayed = bool(replay)
            if replay:
                _, last = replay[0]
                if buffer[-1].offset < last:
                    break  # the replayed range is not all here yet
                end = next(i for i, r in enumerate(buffer) if r.offset >= last) + 1
                replay.popleft()
            else:
                end = len(buffer)
            chunks.append((buffer[:end], replayed))
            self.next_offset = buffer[end - 1].offset + 1
            del buffer[:end]
        return chunks
