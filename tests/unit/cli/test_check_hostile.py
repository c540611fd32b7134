"""``privaudit check`` on hostile input: one result per line, whatever the line holds, never a
traceback, never exit 1 for a crash; what it shows on a terminal is inert (issue 18, items 5, 8)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privaudit.cli.app import cli
from tests.helpers import access, membership

NOW = "2026-11-02T00:00:00+0000"
DAY = datetime(2026, 11, 1, tzinfo=UTC)


def _line(event, **changes) -> bytes:
    body = json.loads(event.model_dump_json())
    body.update(changes)
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _check(data: bytes, *args: str):
    result = CliRunner(env={"COLUMNS": "400"}).invoke(cli, ["check", "--now", NOW, *args, "-"], input=data,
                                                      catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result


GOOD = _line(access(occurred_at=DAY))

#: Lines no event can be made of, each with what its error line says.
BAD_LINES = [
    (b"\xff", "not UTF-8"),
    (b"\xc3\x28 broken sequence", "not UTF-8"),
    (b'{"a": "\xed\xa0\x80"}', "not UTF-8"),  # a surrogate encoded as UTF-8
    (b'{"a":1}', "type"),
    (b"[1, 2, 3]", ""),
    (b"nul\x00l", ""),
    (b'"just a string"', ""),
    (b"{" * 5000, ""),  # deep nesting
    (b'{"type": "access", "occurred_at": 1e400}', ""),
    (_line(membership("SIGNUP"), occurred_at="9999-12-31T23:59:59-14:00"), "occurred_at"),
    (_line(membership("SIGNUP"), occurred_at="0001-01-01T00:00:00+14:00"), "occurred_at"),
    (_line(membership("SIGNUP"), occurred_at="99999-01-01T00:00:00Z"), "occurred_at"),
    (_line(membership("SIGNUP"), occurred_at="2026-02-30T00:00:00Z"), "occurred_at"),
    (_line(membership("SIGNUP"), occurred_at=-(10**20)), "occurred_at"),
    (_line(access(), record_count=10**30), "record_count"),
    (_line(access(), data_items=["DEVICE_ID"] * 100_000), ""),
]


@pytest.mark.parametrize(("bad", "says"), BAD_LINES, ids=[f"bad-{i}" for i in range(len(BAD_LINES))])
def test_each_bad_line_is_one_error_line_and_the_next_lines_go_on(bad: bytes, says: str):
    result = _check(GOOD + b"\n" + bad + b"\n" + GOOD + b"\n")
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 3 and "violations" in out[0] and "violations" in out[2]
    assert out[1]["line"] == 2 and says in out[1]["error"]
    assert len(out[1]["error"]) <= 1024 + 64  # bounded, whatever the line held


@pytest.mark.parametrize("when", ["2106-02-08T00:00:00Z", "2150-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                                  "2026-11-03T00:00:01Z"])
def test_an_event_later_than_now_plus_the_skew_is_an_error_line(when: str):
    out = json.loads(_check(_line(access(), occurred_at=when) + b"\n").stdout)
    assert "later than now plus the clock-skew allowance" in out["error"]
    # within the default allowance of a day, and with a wider one, it is checked
    assert "violations" in json.loads(_check(_line(access(), occurred_at="2026-11-02T23:00:00Z")).stdout)
    if when.startswith("2026"):
        assert "violations" in json.loads(_check(_line(access(), occurred_at=when), "--clock-skew", "2d").stdout)


def test_a_line_longer_than_the_limit_is_not_held_and_says_its_length():
    long = b'{"type": "access", "pad": "' + b"x" * 3_000_000 + b'"}'
    result = _check(GOOD + b"\n" + long + b"\n" + GOOD + b"\n", "--max-record-bytes", "65536")
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("line") for o in out] == [None, 2, None]
    assert out[1]["error"] == f"a line of {len(long):,} bytes, over the limit of 65,536 (--max-record-bytes)"


def test_a_crash_is_not_exit_1():
    result = _check(b"\xff\n")
    assert result.exit_code == 0
    assert _check(b"\xff\n", "--fail-on-violation").exit_code == 0  # no violation found: not 1


@pytest.mark.parametrize("hostile", [
    "[link=http://attacker.example]click[/link]",
    "[/]",
    "[bold red]alarm[/bold red]",
    "\x1b[2J\x1b[31mred",  # clear the screen, then colour
    "\x1b]0;new title\x07",  # an OSC sequence: set the terminal's title
    "\x1b]8;;http://attacker.example\x1b\\link\x1b]8;;\x1b\\",  # an OSC 8 hyperlink
    "tab\tnew\nline\rcarriage\x7fdel\x9bcsi",
])
def test_the_table_shows_markup_and_control_characters_as_text(hostile: str):
    line = _line(access(occurred_at=DAY, purpose="MARKETING"), service=hostile)
    result = _check(line + b"\n", "--table")
    assert result.exit_code == 0, result.output
    shown = result.stdout
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", shown), repr(shown)  # nothing for the terminal to run
    if hostile.startswith("["):
        assert hostile.split("]")[0].replace(" ", "") + "]" in "".join(shown.split())  # the brackets, as typed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=300),
                          st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
                          st.dictionaries(st.sampled_from(["type", "occurred_at", "event_id", "service", "data_items",
                                                           "subject_id", "purpose", "record_count"]),
                                          st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=40),
                                                    st.lists(st.text(max_size=10), max_size=5)),
                                          max_size=8).map(lambda d: json.dumps(d).encode())),
                max_size=6))
def test_fuzzed_lines_each_give_one_result_and_never_a_traceback(lines: list[bytes]):
    lines = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
    result = _check(b"".join(line + b"\n" for line in lines))
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)
    assert all(("error" in o and o["line"] == i) or "violations" in o for i, o in enumerate(out, 1))
