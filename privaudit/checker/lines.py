"""JSON Lines in, one result per line out (``privaudit check``, and the demo's self-check).

Every line gives exactly one result, in order, whatever it holds: an event and its verdicts, or
the line's number and a one-line reason (bounded to :data:`~privaudit.errors.REASON_LIMIT`). A
line that is not UTF-8, is longer than ``max_line_bytes``, is not JSON, breaks the contract,
happened after ``not_after_ms()`` or before the first policy version is such an error, and the
lines after it are checked as usual. A line given as :class:`TooLong` (the reader did not keep it)
is an error of its own.

As in the consumer, an event id seen again within ``window`` lines is a repeat (no verdicts: it was
checked once) when its content (:mod:`privaudit.canonical`) is the same, and a rewrite (PA-016 only)
when it is not.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from privaudit.canonical import content_hash
from privaudit.errors import REASON_LIMIT, EventError, NoPolicyInForce, excerpt
from privaudit.policy import to_millis
from privaudit.schemas.identifiers import mask_rrn
from privaudit.schemas.models import Event, parse_json, stored_content

from .checker import Checker
from .rules import Violation, rewrite_violation

#: Lines back an event id is remembered (the consumer's default window, in offsets).
DEFAULT_WINDOW = 200_000


@dataclass(frozen=True, slots=True)
class LineResult:
    line: int
    event: Event | None
    violations: list[Violation]
    error: str | None = None
    repeat_of: int | None = None  # the line this one repeats (same id, same content)

    def as_dict(self) -> dict[str, object]:
        if self.event is None:
            return {"line": self.line, "error": self.error}
        out: dict[str, object] = {"event_id": self.event.event_id, "violations": [v.as_dict() for v in self.violations]}
        if self.repeat_of is not None:
            out["repeat_of_line"] = self.repeat_of
        return out


@dataclass(frozen=True, slots=True)
class TooLong:
    """A line longer than the limit, not kept: only its length."""

    length: int


def check_lines(checker: Checker, lines: Iterable[bytes | str | TooLong], *,
                not_after_ms: Callable[[], int] | None = None,
                max_line_bytes: int | None = None, window: int = DEFAULT_WINDOW) -> Iterator[LineResult]:
    """Parse and check each line in order; a bad line yields an error result and the rest goes on."""
    first: dict[str, tuple[bytes, int]] = {}  # event id -> (content hash, line) of the copy checked
    order: deque[tuple[int, str]] = deque()
    for number, line in enumerate(lines, 1):
        if isinstance(line, TooLong):
            yield LineResult(number, None, [], f"a line of {line.length:,} bytes, over the limit of "
                                               f"{max_line_bytes or 0:,} (--max-record-bytes)")
            continue
        if isinstance(line, bytes):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield LineResult(number, None, [], f"not UTF-8: byte {line[exc.start]:#04x} at position {exc.start}")
                continue
        else:
            text = line
        if max_line_bytes is not None and len(text) > max_line_bytes:
            yield LineResult(number, None, [], f"a line of {len(text):,} characters, over the limit of "
                                               f"{max_line_bytes:,} (--max-record-bytes)")
            continue
        if not text.strip():
            yield LineResult(number, None, [], "empty line")
            continue
        try:
            event = parse_json(text, not_after_ms=not_after_ms() if not_after_ms is not None else None)
            content = stored_content(event)
            digest = content_hash(content)
            while order and order[0][0] < number - window:
                old, gone = order.popleft()
                if first.get(gone, (b"", -1))[1] == old:
                    del first[gone]
            known = first.get(content[0])
            if known is not None:
                if known[0] == digest:
                    yield LineResult(number, event, [], repeat_of=known[1])
                else:
                    version = checker.policy.version_at(to_millis(event.occurred_at))
                    yield LineResult(number, event, [rewrite_violation(content[0], f"line {known[1]}",
                                                                       version.label if version else "")])
                continue
            violations = checker.check(event)
        except (EventError, NoPolicyInForce) as exc:
            yield LineResult(number, None, [], excerpt(mask_rrn(str(exc))[0], REASON_LIMIT, quoted=False))
            continue
        first[content[0]] = (digest, number)
        order.append((number, content[0]))
        yield LineResult(number, event, violations)
