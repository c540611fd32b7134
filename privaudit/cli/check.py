"""``privaudit check``: JSON Lines events in, one verdict line per input line out.

Each output line is ``{"event_id": ..., "violations": [...]}`` (rules sorted by id, an empty list
when clean) or, for a line that is not a checkable event, ``{"line": N, "error": "..."}``; the
run goes on after a bad line (:mod:`privaudit.checker.lines`). ``--table`` prints the verdicts for
a person instead, every value shown as text (markup and control characters escaped).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import click
from rich.text import Text

from privaudit.checker import CATALOGUE, Checker
from privaudit.checker.lines import LineResult, TooLong, check_lines
from privaudit.i18n import kst_text
from privaudit.policy import load_policy, to_millis

from .options import clock_skew_option, max_record_bytes_option
from .terminal import SEVERITY_STYLE, Output


@click.command()
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy file (default: the shipped CareSquare ImFine Doctor policy).",
)
@click.option("--table", is_flag=True, help="Print the verdicts as a readable table instead of JSON Lines.")
@click.option("--fail-on-violation", is_flag=True, help="Exit 1 when any violation was found.")
@click.option("--now", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"]), default=None,
              help="Check as if it were this time (with a UTC offset): events later than it plus --clock-skew are "
                   "refused [default: the wall clock].")
@clock_skew_option
@max_record_bytes_option
@click.argument("events", type=click.File("rb"), default="-", metavar="[FILE | -]")
def check(policy_path: Path | None, table: bool, fail_on_violation: bool, now: datetime | None, clock_skew: float,
          max_record_bytes: int, events: BinaryIO) -> None:
    """Check JSON Lines events against the policy in force when each happened.

    Reads FILE (or standard input) and writes exactly one JSON line per input line, in order; a
    line that is not a checkable event (not UTF-8, not JSON, breaking the contract, too long, or
    dated later than now plus --clock-skew) gives an error line, and the next lines go on.
    Exit 0 when every line was handled, 1 with --fail-on-violation if any violation was found,
    2 for usage or policy errors.
    """
    if now is not None and now.tzinfo is None:
        raise click.BadParameter("give a UTC offset, e.g. 2026-11-01T00:00:00+0900", param_hint="--now")
    checker = Checker(load_policy(policy_path))
    out = Output()
    results = check_lines(checker, read_lines(events, max_record_bytes), max_line_bytes=max_record_bytes,
                          not_after_ms=_not_after(now, clock_skew))
    found = _print_table(out, results) if table else _print_json_lines(out, results)
    if fail_on_violation and found:
        raise SystemExit(1)


def _not_after(now: datetime | None, skew_s: float) -> Callable[[], int]:
    skew_ms = int(skew_s * 1000)
    if now is not None:
        fixed = to_millis(now) + skew_ms
        return lambda: fixed
    return lambda: int(time.time() * 1000) + skew_ms


def read_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[bytes | TooLong]:
    """The lines of ``stream`` (newline removed), a line longer than ``max_line_bytes`` as its
    length only: it is read through in chunks, never held whole."""
    while True:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        if len(line) <= max_line_bytes or line.endswith(b"\n"):
            yield line.rstrip(b"\r\n")
            continue
        length = len(line)
        while not line.endswith(b"\n"):
            line = stream.readline(1 << 16)
            if not line:
                break
            length += len(line)
        yield TooLong(length - (1 if line.endswith(b"\n") else 0))


def _print_json_lines(out: Output, results: Iterable[LineResult]) -> bool:
    found = False
    for result in results:
        found = found or bool(result.violations)
        out.json(result.as_dict())
    return found


def _print_table(out: Output, results: Iterable[LineResult]) -> bool:
    rows: list[tuple[object, ...]] = []
    by_rule, checked, clean, errors = Counter[str](), 0, 0, 0
    for r in results:
        if r.event is None:
            errors += 1
            rows.append((r.line, "", "", "", "error", "", r.error))
            continue
        checked += 1
        clean += not r.violations
        e = r.event
        for v in r.violations:
            by_rule[v.rule] += 1
            when = kst_text(e.occurred_at).removesuffix(" KST")
            rows.append((r.line, when, f"{e.type}\n{e.service}", e.subject_id, v.rule,
                         Text(v.severity, style=SEVERITY_STYLE[v.severity]), v.message))
    columns = ("line", "occurred_at (KST)", "event\nservice", "subject", "rule", "severity", "message")
    out.table("Violations", columns, rows, no_wrap=("rule", "severity"))
    titles = {rule.id: rule for rule in CATALOGUE}
    out.table(
        "By rule",
        ("rule", "severity", "title", "count"),
        ((rid, titles[rid].severity, titles[rid].title, n) for rid, n in sorted(by_rule.items())),
    )
    out.line(
        f"{checked} events checked: {clean} clean, {checked - clean} with "
        f"{sum(by_rule.values())} violation(s); {errors} line(s) not checkable"
    )
    return bool(by_rule)


@click.command()
@click.option("--json", "json_mode", is_flag=True, help="Print JSON instead of a table.")
def rules(json_mode: bool) -> None:
    """List the rule catalogue: ids, severities, titles and the law each enforces."""
    out = Output(json_mode)
    if json_mode:
        out.json([{"id": r.id, "severity": r.severity, "title": r.title, "law": r.law} for r in CATALOGUE])
        return
    out.table("Rule catalogue", ("id", "severity", "title", "law"),
              ((r.id, r.severity, r.title, r.law) for r in CATALOGUE))
