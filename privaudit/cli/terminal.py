"""The one output wrapper: rich tables on a terminal, plain JSON with ``--json``, NO_COLOR honoured.

User errors end in one line on stderr (``privaudit: error: ...``) and exit 2; the CLI app turns
every :class:`~privaudit.errors.PrivauditError` into that.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any, TextIO

import click
from rich.console import Console
from rich.table import Table


class UserError(click.ClickException):
    """An error the user can fix: one line, exit 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"privaudit: error: {self.format_message()}", err=True, file=file)


class Output:
    """Where commands write: tables for people, JSON for programs."""

    def __init__(self, json_mode: bool = False, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stream = stream or sys.stdout
        no_color = "NO_COLOR" in os.environ
        self.console = Console(file=self.stream, no_color=no_color, highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, no_color=no_color, highlight=False)

    def json(self, value: Any) -> None:
        """One JSON document on one line."""
        self.stream.write(json.dumps(value, ensure_ascii=False) + "\n")

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        no_wrap: Sequence[str] = (),
    ) -> None:
        table = Table(title=title, title_justify="left", show_lines=False)
        for i, name in enumerate(columns):  # the first column is a key: never fold it
            table.add_column(name, overflow="fold", no_wrap=i == 0 or name in no_wrap)
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self.console.print(table)

    def line(self, text: str = "") -> None:
        self.console.print(text, soft_wrap=True)

    def note(self, text: str) -> None:
        """Progress and remarks for a person: stderr, so stdout stays machine-readable."""
        self.err.print(text)


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow"}
