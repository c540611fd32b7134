"""The CLI through click's runner: outputs, exit codes, and one-line errors."""

from __future__ import annotations

import json
import shutil
from datetime import UTC

import pytest
import yaml
from click.testing import CliRunner

from privaudit.cli.app import cli
from privaudit.schemas import SchemaSet
from tests.helpers import REPO, access, membership, shipped_document

SAMPLE = REPO / "examples" / "sample-events.jsonl"


@pytest.fixture
def run():
    runner = CliRunner(env={"COLUMNS": "400"})  # rich folds table cells to the width

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def lines_of(*events) -> str:
    return "".join(e.model_dump_json() + "\n" for e in events)


class TestCheck:
    def test_one_json_line_per_input_line_in_order(self, run):
        text = SAMPLE.read_text(encoding="utf-8")
        result = run("check", str(SAMPLE))
        assert result.exit_code == 0, result.output
        out = [json.loads(line) for line in result.stdout.splitlines()]
        inputs = text.splitlines()
        assert len(out) == len(inputs)
        for number, (line, verdict) in enumerate(zip(inputs, out, strict=True), 1):
            if "error" in verdict:
                assert verdict["line"] == number
            else:
                assert verdict["event_id"] == json.loads(line)["event_id"]
                ids = [v["rule"] for v in verdict["violations"]]
                assert ids == sorted(ids)
                for v in verdict["violations"]:
                    # the English message, and what it is made of: a catalogue text and its parameters
                    assert set(v) == {"rule", "severity", "message", "policy_version", "template", "args"}
                    assert v["message"] == v["template"].format(**v["args"])

    def test_reads_stdin_and_goes_on_after_bad_lines(self, run):
        text = "not json\n\n" + lines_of(access(purpose="MARKETING")) + '{"type": "access"}\n' + lines_of(access())
        result = run("check", "-", input=text)
        assert result.exit_code == 0
        out = [json.loads(line) for line in result.stdout.splitlines()]
        assert [o.get("line") for o in out] == [1, 2, None, 4, None]
        assert "Invalid JSON" in out[0]["error"] and out[1]["error"] == "empty line"
        assert [v["rule"] for v in out[2]["violations"]] == ["PA-001"]
        assert out[4]["violations"] == []

    def test_an_event_before_the_first_policy_version_is_an_error_line(self, run):
        from datetime import datetime

        result = run("check", input=lines_of(access(occurred_at=datetime(2019, 6, 1, tzinfo=UTC))))
        [out] = [json.loads(line) for line in result.stdout.splitlines()]
        assert out["line"] == 1 and "before the first version" in out["error"]

    def test_fail_on_violation(self, run):
        clean = lines_of(membership("SIGNUP"), access())
        assert run("check", "--fail-on-violation", input=clean).exit_code == 0
        dirty = lines_of(access(purpose="MARKETING"))
        assert run("check", input=dirty).exit_code == 0
        assert run("check", "--fail-on-violation", input=dirty).exit_code == 1

    def test_table(self, run):
        result = run("check", "--table", str(SAMPLE))
        assert result.exit_code == 0
        for rule in ("PA-001", "PA-003", "PA-008", "PA-015"):
            assert rule in result.stdout
        assert "events checked" in result.stdout and "not checkable" in result.stdout

    def test_another_policy(self, run, tmp_path):
        data = shipped_document()
        data["versions"][0]["purposes"][0]["code"] = "MARKETING"
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        result = run("check", "--policy", str(path), input=lines_of(access(purpose="MARKETING")))
        assert json.loads(result.stdout)["violations"] == []

    def test_a_bad_policy_is_one_line_and_exit_2(self, run, tmp_path):
        data = shipped_document()
        data["versions"][0]["purposes"][2]["items"][0] = "FOO"
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        result = run("check", "--policy", str(path), input="")
        assert result.exit_code == 2
        assert result.stderr == f"privaudit: error: {path}: versions[0].purposes[2].items[0]: unknown item code 'FOO'\n"
        assert result.stdout == ""

    def test_a_missing_input_file_is_a_usage_error(self, run, tmp_path):
        result = run("check", str(tmp_path / "none.jsonl"))
        assert result.exit_code == 2 and "No such file or directory" in result.stderr


class TestPolicyCommands:
    def test_validate_ok(self, run):
        result = run("policy", "validate", str(REPO / "policies" / "caresquare-imfine-doctor.yaml"))
        assert result.exit_code == 0 and "ok: policy caresquare-imfine-doctor" in result.stdout

    def test_validate_refuses_with_file_and_path(self, run, tmp_path):
        path = tmp_path / "typo.yaml"
        data = shipped_document()
        data["versions"][0]["recipients"][0]["countries"] = ["KOR"]
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        result = run("policy", "validate", str(path))
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert f"{path}: versions[0].recipients[0].countries[0]: not an ISO 3166-1" in result.stderr

    def test_show_default_has_korean_text(self, run):
        result = run("policy", "show")
        assert result.exit_code == 0
        for text in ("회원식별 및 가입의사 확인, 회원관리", "CARD_ISSUER", "LEGAL_RETENTION", "별도 보관하지 않습니다"):
            assert text in result.stdout

    def test_show_json_and_unknown_version(self, run):
        data = json.loads(run("policy", "show", "--json").stdout)
        assert data["policy_id"] == "caresquare-imfine-doctor"
        assert run("policy", "show", "--version", "9.9").exit_code == 2


class TestSchemasAndRules:
    def test_schemas_check_ok(self, run):
        result = run("schemas", "check", "--json")
        assert result.exit_code == 0
        assert all(r["compatible"] and r["released"] == "1" for r in json.loads(result.stdout))

    def test_schemas_check_finds_a_backward_incompatible_change(self, run, tmp_path):
        root = tmp_path / "schemas"
        shutil.copytree(SchemaSet().root / "avro", root / "avro")
        shutil.copytree(SchemaSet().root / "released", root / "released")
        path = root / "avro" / "access.avsc"
        schema = json.loads(path.read_text())
        schema["fields"].append({"name": "ticket_id", "type": "string"})  # no default: old data lacks it
        path.write_text(json.dumps(schema))
        result = run("schemas", "check", "--dir", str(root), "--json")
        assert result.exit_code == 1
        by_type = {r["event_type"]: r for r in json.loads(result.stdout)}
        assert not by_type["access"]["compatible"]
        assert "reader_field_missing_default_value" in by_type["access"]["problems"][0]
        assert by_type["share"]["compatible"]

    def test_rules(self, run):
        listed = json.loads(run("rules", "--json").stdout)
        assert [r["id"] for r in listed] == [f"PA-{i:03d}" for i in range(1, 19)]


def test_consumer_threads_and_processes_are_one_or_the_other(run, tmp_path):
    result = run("consume", "--data-dir", str(tmp_path), "--consumers", "2", "--processes", "2")
    assert result.exit_code == 2 and "not both" in result.stderr
    assert not (tmp_path / "clickhouse").exists()  # refused before anything was opened


def test_simulate_without_a_broker_says_what_it_waits_for_and_keeps_the_events(run, tmp_path):
    from privaudit.bus import free_port
    from privaudit.producers import Spool

    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    spool = tmp_path / "spool"
    result = run("simulate", "--events", "20", "--bootstrap", bootstrap, "--spool-dir", str(spool),
                 "--flush-timeout", "1")
    assert result.exit_code == 2  # not 1, which says "violations found"
    assert f"waiting up to 1 s for the broker at {bootstrap}" in result.stderr
    assert f"privaudit: error: the broker at {bootstrap} did not take every event" in result.stderr
    assert f"they wait in the spool at {spool}" in result.stderr
    assert len(Spool(spool).pending(100)) == 20  # all of them, for the next run


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyError("x"), OverflowError("date value out of range")])
def test_an_unexpected_exception_is_a_bug_with_its_traceback_and_status_70_never_1(run, monkeypatch, error):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr("privaudit.cli.check.check_lines", broken)
    result = run("check", str(SAMPLE))
    assert result.exit_code == 70
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"privaudit: internal error: {type(error).__name__}: ")
