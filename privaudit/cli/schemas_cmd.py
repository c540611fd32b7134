"""``privaudit schemas check``: the working schemas against the last released versions."""

from __future__ import annotations

from pathlib import Path

import click

from privaudit.schemas.registry import SchemaSet

from .terminal import Output


@click.group()
def schemas() -> None:
    """The Avro event schemas: compatibility of the working versions."""


@schemas.command("check")
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Schema directory holding avro/ and released/ (default: the shipped schemas).",
)
@click.option("--json", "json_mode", is_flag=True, help="Print JSON instead of a table.")
def check_cmd(root: Path | None, json_mode: bool) -> None:
    """Verify the working schemas are BACKWARD compatible with the last released ones.

    BACKWARD as a schema registry means it: a reader on the working schema reads all data
    written with the last released schema. Exit 1 when any schema is incompatible.
    """
    results = SchemaSet(root).check_backward()
    out = Output(json_mode)
    if json_mode:
        out.json([r.as_dict() for r in results])
    else:
        out.table(
            "Working schemas vs last released (BACKWARD)",
            ("event type", "released", "compatible", "problems"),
            (
                (r.event_type, r.released or "(never released)", "yes" if r.compatible else "[red]NO[/]",
                 "; ".join(r.problems))
                for r in results
            ),
        )
    if not all(r.compatible for r in results):
        raise SystemExit(1)
