"""JSON Lines in, one result per line out (``privaudit check``, and the demo's self-check).

Every line gives exactly one result, in order, whatever it holds: an event and its verdicts, or
the line's number and a one-line reason (bounded to :data:`~privaudit.errors.REASON_LIMIT`). A
line that is not UTF-8, is longer than ``max_line_bytes``, is not JSON, breaks the contract,
happened after ``not_after_ms()`` or before the first policy version is such an error, and the
lines after it are checked as usual. A line given as :class:`TooLong` (the reader did not keep it)
is an error of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from privaudit.errors import REASON_LIMIT, EventError, NoPolicyInForce, excerpt
from privaudit.schemas.identifiers import mask_rrn
from privaudit.schemas.models import Event, parse_json

from .checker import Checker
from .rules import Violation


@dataclass(frozen=True, slots=True)
class LineResult:
    line: int
    event: Event | None
    violations: list[Violation]
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        if self.event is None:
            return {"line": self.line, "error": self.error}
        return {"event_id": self.event.event_id, "violations": [v.as_dict() for v in self.violations]}


@dataclass(frozen=True, slots=True)
class TooLong:
    """A line longer than the limit, not kept: only its length."""

    length: int


def check_lines(checker: Checker, lines: Iterable[bytes | str | TooLong], *,
                not_after_ms: Callable[[], int] | None = None,
                max_line_bytes: int | None = None) -> Iterator[LineResult]:
    """Parse and check each line in order; a bad line yields an error result and the rest goes on."""
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
            violations = checker.check(event)
        except (EventError, NoPolicyInForce) as exc:
            yield LineResult(number, None, [], excerpt(mask_rrn(str(exc))[0], REASON_LIMIT, quoted=False))
            continue
        yield LineResult(number, event, violations)
