"""``privaudit check``: JSON Lines events in, one verdict line per input line out.

Each output line is ``{"event_id": ..., "violations": [...]}`` (rules sorted by id, an empty list
when clean) or, for a line that is not a checkable event, ``{"line": N, "error": "..."}``; the
run goes on after a bad line. ``--table`` prints the verdicts for a person instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import click

from privaudit.checker import CATALOGUE, Checker, Violation
from privaudit.errors import EventError, NoPolicyInForce
from privaudit.policy import load_policy
from privaudit.schemas.models import Event, parse_json

from .terminal import SEVERITY_STYLE, Output


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


def check_lines(checker: Checker, lines: Iterable[str]) -> Iterator[LineResult]:
    """Parse and check each line in order; a bad line yields an error result and the rest goes on."""
    for number, text in enumerate(lines, 1):
        if not text.strip():
            yield LineResult(number, None, [], "empty line")
            continue
        try:
            event = parse_json(text)
            violations = checker.check(event)
        except (EventError, NoPolicyInForce) as exc:
            yield LineResult(number, None, [], str(exc))
            continue
        yield LineResult(number, event, violations)


@click.command()
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy file (default: the shipped CareSquare ImFine Doctor policy).",
)
@click.option("--table", is_flag=True, help="Print the verdicts as a readable table instead of JSON Lines.")
@click.option("--fail-on-violation", is_flag=True, help="Exit 1 when any violation was found.")
@click.argument("events", type=click.File("r", encoding="utf-8"), default="-", metavar="[FILE | -]")
def check(policy_path: Path | None, table: bool, fail_on_violation: bool, events: TextIO) -> None:
    """Check JSON Lines events against the policy in force when each happened.

    Reads FILE (or standard input) and writes exactly one JSON line per input line, in order.
    Exit 0 when every line was handled, 1 with --fail-on-violation if any violation was found,
    2 for usage or policy errors.
    """
    checker = Checker(load_policy(policy_path))
    out = Output()
    results = check_lines(checker, events)
    found = _print_table(out, results) if table else _print_json_lines(out, results)
    if fail_on_violation and found:
        raise SystemExit(1)


def _print_json_lines(out: Output, results: Iterable[LineResult]) -> bool:
    found = False
    for result in results:
        found = found or bool(result.violations)
        out.json(result.as_dict())
    return found


def _print_table(out: Output, results: Iterable[LineResult]) -> bool:
    rows, by_rule, checked, clean, errors = [], Counter[str](), 0, 0, 0
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
            sev = f"[{SEVERITY_STYLE[v.severity]}]{v.severity}[/]"
            when = e.occurred_at.strftime("%Y-%m-%d %H:%M:%SZ")
            rows.append((r.line, when, f"{e.type}\n{e.service}", e.subject_id, v.rule, sev, v.message))
    columns = ("line", "occurred_at (UTC)", "event\nservice", "subject", "rule", "severity", "message")
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
