"""What the checker remembers of the stream: consents, membership changes, and bulk windows.

State is kept **over event time**, not just "the latest": a rule reads the state as the stream
has shown it so far *with occurred_at <= the event's occurred_at*. So an event that arrives late
sees the consent that was in force when it happened, and a late consent or withdrawal never
changes verdicts already given (nothing is decided retroactively). Among changes with the same
``occurred_at``, the one seen later in the stream wins.

Everything here is plain data: :meth:`CheckerState.snapshot` returns JSON-ready lists and
:meth:`CheckerState.restore` rebuilds an identical state, so a consumer can persist it and
replay a batch after a crash with identical verdicts.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
SNAPSHOT_FORMAT = 1
#: How late (in event time, behind the newest) an event may arrive and still be checked exactly.
DEFAULT_LATE_TOLERANCE_MS = 2 * 60 * 60 * 1000


class History(Generic[T]):
    """The values one key took over event time.

    With ``keep_ms``, an in-order change drops the entries that no lookup at or after
    ``newest - keep_ms`` needs: those before the change in force at that time. Lookups within
    ``keep_ms`` of the newest change stay exact, and a long-lived subject's history stops growing
    with the stream. What is dropped depends only on this key's changes in stream order, so a
    history rebuilt from its stored rows is the same as one built live."""

    __slots__ = ("times", "values")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.values: list[T] = []

    def add(self, ms: int, value: T, keep_ms: int | None = None) -> None:
        times = self.times
        if not times or ms >= times[-1]:
            times.append(ms)
            self.values.append(value)
            # Pruned as soon as the oldest entry is superseded at the cutoff (one comparison
            # otherwise): waiting for several first kept histories long (docs/benchmarks.md, run 17).
            if keep_ms is not None and len(times) > 1 and times[1] <= ms - keep_ms:
                in_force = bisect_right(times, ms - keep_ms) - 1  # the change in force at the cutoff
                del times[:in_force], self.values[:in_force]
        else:  # late: after any entry with the same time, which it was seen after
            i = bisect_right(times, ms)
            times.insert(i, ms)
            self.values.insert(i, value)

    def latest(self, ms: int) -> tuple[int, T] | None:
        """``(time, value)`` of the last change at or before ``ms``, or None."""
        times = self.times
        i = len(times) if times[-1] <= ms else bisect_right(times, ms)
        return (times[i - 1], self.values[i - 1]) if i else None


@dataclass(frozen=True, slots=True)
class Grant:
    """A consent's content as of one change."""

    granted: bool
    purposes: frozenset[str]
    items: frozenset[str]
    consent_id: str


class ActorWindow:
    """One actor's recent accesses, for "distinct subjects in the window ending at this event".

    Entries ``(time, subject)`` are kept sorted by time. For the usual in-order event a running
    counter over the live window answers in O(1) amortised; a late event is counted by a scan of
    its own window. Entries older than ``keep_ms`` behind the newest are dropped, so an event
    arriving later than that (in event time) is counted against what remains.
    """

    __slots__ = ("times", "subjects", "head", "lo", "counts", "width")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.subjects: list[str] = []
        self.head = 0  # first retained entry
        self.lo = 0  # first entry inside the live window (newest - width, newest]
        self.counts: Counter[str] = Counter()
        self.width = -1

    def add(self, ms: int, subject: str, width: int, keep_ms: int) -> int:
        """Record an access; the number of distinct subjects in ``(ms - width, ms]``."""
        times, subjects = self.times, self.subjects
        if times and ms < times[-1]:
            return self._add_late(ms, subject, width)
        times.append(ms)
        subjects.append(subject)
        if width != self.width:
            self._rebuild(width)
        else:
            self.counts[subject] += 1
            cutoff, lo, counts = ms - width, self.lo, self.counts
            while times[lo] <= cutoff:
                gone = subjects[lo]
                left = counts[gone] - 1
                if left:
                    counts[gone] = left
                else:
                    del counts[gone]
                lo += 1
            self.lo = lo
        self._prune(ms - keep_ms)
        return len(self.counts)

    def _add_late(self, ms: int, subject: str, width: int) -> int:
        times, subjects = self.times, self.subjects
        i = bisect_right(times, ms, self.head)
        times.insert(i, ms)
        subjects.insert(i, subject)
        if ms > times[-1] - self.width:
            self.counts[subject] += 1  # inside the live window (i >= lo)
        else:
            self.lo += 1  # inserted before the live window
        start = bisect_right(times, ms - width, self.head, i)
        return len(set(subjects[start : i + 1]))

    def _rebuild(self, width: int) -> None:
        self.width = width
        self.lo = bisect_right(self.times, self.times[-1] - width, self.head)
        self.counts = Counter(self.subjects[self.lo :])

    def _prune(self, cutoff: int) -> None:
        times, head = self.times, self.head
        while head < self.lo and times[head] <= cutoff:
            head += 1
        if head > 512 and head * 2 > len(times):
            del times[:head], self.subjects[:head]
            self.lo -= head
            head = 0
        self.head = head

    def dump(self) -> list[Any]:
        return [self.width, self.times[self.head :], self.subjects[self.head :]]

    @classmethod
    def load(cls, data: list[Any]) -> ActorWindow:
        window = cls()
        width, window.times, window.subjects = data[0], list(data[1]), list(data[2])
        if window.times:
            window._rebuild(width)
        return window


class CheckerState:
    """Consents per (subject, scope, target), membership per subject, windows per actor.

    Consent and membership histories keep ``keep_ms`` of event time behind their newest change,
    and the change in force before that (:class:`History`)."""

    __slots__ = ("consents", "membership", "windows", "_keys_of", "keep_ms")

    def __init__(self, keep_ms: int = DEFAULT_LATE_TOLERANCE_MS) -> None:
        self.keep_ms = keep_ms
        self.consents: dict[tuple[str, str, str], History[Grant]] = {}
        self.membership: dict[str, History[str]] = {}
        self.windows: dict[str, ActorWindow] = {}
        self._keys_of: dict[str, list[tuple[str, str, str]]] = {}  # subject -> its consent keys

    def forget(self, subjects: set[str] | list[str]) -> None:
        """Drop everything known of ``subjects`` (a bounded holder reloads it from where it keeps
        the changes before it asks about them again)."""
        for subject in subjects:
            for key in self._keys_of.pop(subject, ()):
                self.consents.pop(key, None)
            self.membership.pop(subject, None)

    def grant(self, subject: str, scope: str, target: str, ms: int) -> Grant | None:
        """The consent in force at ``ms`` if it is granted, else None."""
        history = self.consents.get((subject, scope, target))
        if history is None:
            return None
        entry = history.latest(ms)
        return entry[1] if entry is not None and entry[1].granted else None

    def membership_at(self, subject: str, ms: int) -> tuple[int, str] | None:
        history = self.membership.get(subject)
        return history.latest(ms) if history is not None else None

    def record_consent(self, subject: str, scope: str, target: str, ms: int, grant: Grant) -> None:
        key = (subject, scope, target)
        history = self.consents.get(key)
        if history is None:
            history = self.consents[key] = History()
            self._keys_of.setdefault(subject, []).append(key)
        history.add(ms, grant, self.keep_ms)

    def record_membership(self, subject: str, ms: int, change: str) -> None:
        history = self.membership.get(subject)
        if history is None:
            history = self.membership[subject] = History()
        history.add(ms, change, self.keep_ms)

    def touch(self, actor: str, ms: int, subject: str, width: int, keep_ms: int) -> int:
        window = self.windows.get(actor)
        if window is None:
            window = self.windows[actor] = ActorWindow()
        return window.add(ms, subject, width, keep_ms)

    # -- persistence ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of the whole state."""
        return {
            "format": SNAPSHOT_FORMAT,
            "consents": [
                [subject, scope, target, [
                    [ms, g.granted, sorted(g.purposes), sorted(g.items), g.consent_id]
                    for ms, g in zip(h.times, h.values, strict=True)
                ]]
                for (subject, scope, target), h in self.consents.items()
            ],
            "membership": [
                [subject, [[ms, change] for ms, change in zip(h.times, h.values, strict=True)]]
                for subject, h in self.membership.items()
            ],
            "windows": [[actor, w.dump()] for actor, w in self.windows.items()],
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> CheckerState:
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unknown checker snapshot format {data.get('format')!r}")
        state = cls()
        for subject, scope, target, entries in data["consents"]:
            history: History[Grant] = History()
            for ms, granted, purposes, items, consent_id in entries:
                history.times.append(ms)
                history.values.append(Grant(granted, frozenset(purposes), frozenset(items), consent_id))
            state.consents[(subject, scope, target)] = history
            state._keys_of.setdefault(subject, []).append((subject, scope, target))
        for subject, entries in data["membership"]:
            changes: History[str] = History()
            for ms, change in entries:
                changes.times.append(ms)
                changes.values.append(change)
            state.membership[subject] = changes
        for actor, dumped in data["windows"]:
            state.windows[actor] = ActorWindow.load(dumped)
        return state
