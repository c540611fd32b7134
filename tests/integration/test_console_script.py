"""The installed ``privaudit`` console script, run as a user would, on the shipped sample."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.integration

SAMPLE = REPO / "examples" / "sample-events.jsonl"
# What each line of the sample was written to show (see the comment in examples/README.md).
EXPECTED: dict[int, list[str] | str] = {
    1: [], 2: [], 3: [], 4: ["PA-001"], 5: [], 6: [], 7: ["PA-002"], 8: ["PA-002"], 9: [],
    10: ["PA-003"], 11: [], 12: ["PA-004"], 13: ["PA-005"], 14: ["PA-005", "PA-007"], 15: ["PA-005"],
    16: ["PA-011"], 17: ["PA-010"], 18: ["PA-012"], 19: ["PA-009"], 20: ["PA-013"],
    21: ["PA-002", "PA-014"], 22: ["PA-002", "PA-015"], 23: [], 24: [], 25: ["PA-008"], 26: [], 27: [],
    28: "error", 29: [], 30: [], 31: [], 32: ["PA-001"],
}


def _script() -> str:
    found = Path(sys.executable).with_name("privaudit")
    return str(found) if found.exists() else shutil.which("privaudit") or pytest.skip("privaudit not installed")


def test_sample_verdicts_through_the_console_script():
    proc = subprocess.run([_script(), "check", str(SAMPLE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = {}
    for number, line in enumerate(proc.stdout.splitlines(), 1):
        verdict = json.loads(line)
        got[number] = "error" if "error" in verdict else [v["rule"] for v in verdict["violations"]]
    assert got == EXPECTED


def test_bad_policy_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy_id: x\nversions: nope\n", encoding="utf-8")
    proc = subprocess.run([_script(), "policy", "validate", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"privaudit: error: {bad}: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
