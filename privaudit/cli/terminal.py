"""The one output wrapper: rich tables on a terminal, plain JSON with ``--json``, NO_COLOR honoured.

User errors end in one line on stderr (``privaudit: error: ...``) and exit 2; the CLI app turns
every :class:`~privaudit.errors.PrivauditError` into that.

Values come from events, and an event's fields are anybody's text: every value a table shows is
text, never markup (``[link=...]``, ``[/]``) and never a control character that a terminal would
act on (an escape sequence, a carriage return, a bidirectional override): those are shown escaped,
as ``\x1b``. A cell meant to be styled is passed as a :class:`rich.text.Text`. JSON output escapes
the same characters (still the same strings to a JSON reader).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, Any, TextIO

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from privaudit.i18n import kst_text

#: What a terminal acts on: C0 controls but tab and newline, DEL, C1 controls, and the
#: bidirectional embeddings, overrides and isolates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: object) -> str:
    """``value`` as text for a terminal: control characters escaped. (Markup is escaped where
    the text is handed to rich: :func:`plain`.)"""
    if isinstance(value, datetime):  # stored in UTC; a person reads KST
        return kst_text(value)
    return _CONTROL.sub(_escaped, "" if value is None else str(value))


def plain(value: object) -> str:
    """``value`` for rich's markup: shown as it is, never read as markup."""
    return escape(shown(value))


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
        self.stream.write(_CONTROL.sub(_json_escaped, json.dumps(value, ensure_ascii=False)) + "\n")

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
            table.add_row(*(cell if isinstance(cell, Text) else Text(shown(cell)) for cell in row))
        self.console.print(table)

    def line(self, text: str = "") -> None:
        self.console.print(text, soft_wrap=True)
        self.stream.flush()  # a long-running command's word (an address, a token) is read at once, even in a pipe

    def note(self, text: str) -> None:
        """Progress and remarks for a person: stderr, so stdout stays machine-readable."""
        self.err.print(text)


def _json_escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow"}
