"""Each kind of bad policy file is refused with one line: the file, the field path, the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from privaudit.errors import PolicyError
from privaudit.policy import load_policy, parse_policy
from tests.helpers import shipped_document, with_processors


def refuse(edit: Callable[[dict[str, Any]], None]) -> PolicyError:
    data = shipped_document()
    edit(data)
    with pytest.raises(PolicyError) as info:
        parse_policy(yaml.safe_dump(data, allow_unicode=True), "bad.yaml")
    assert "\n" not in str(info.value)
    return info.value


def v0(data: dict[str, Any]) -> dict[str, Any]:
    return data["versions"][0]


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown item in a purpose", lambda d: v0(d)["purposes"][2]["items"].__setitem__(0, "FOO"),
     "versions[0].purposes[2].items[0]", "unknown item code 'FOO'"),
    ("item not collected", lambda d: v0(d)["purposes"][0]["items"].append("NAME"),
     "versions[0].purposes[0].items[2]", "item 'NAME' is not among collected_items"),
    ("misspelt field", lambda d: v0(d)["purposes"][1].update(itemz=[]),
     "versions[0].purposes[1].itemz", "unknown field"),
    ("missing field", lambda d: v0(d)["purposes"][3].pop("source"),
     "versions[0].purposes[3].source", "required field is missing"),
    ("bad category", lambda d: d["items"][4].update(category="SECRET"),
     "items[4].category", "Input should be"),
    ("duplicate item code", lambda d: d["items"].append(dict(d["items"][0])),
     "items[16].code", "duplicate item code 'DEVICE_ID'"),
    ("duplicate purpose", lambda d: v0(d)["purposes"].append(dict(v0(d)["purposes"][0])),
     "versions[0].purposes[7].code", "duplicate purpose code 'MEMBER_MANAGEMENT'"),
    ("lower-case purpose code", lambda d: v0(d)["purposes"][0].update(code="member"),
     "versions[0].purposes[0].code", "String should match pattern"),
    ("bad country", lambda d: v0(d)["recipients"][0].update(countries=["KR", "ZZ"]),
     "versions[0].recipients[0].countries[1]", "not an ISO 3166-1 alpha-2 country code: 'ZZ'"),
    ("recipient purpose undeclared", lambda d: v0(d)["recipients"][0].update(purposes=["MARKETING"]),
     "versions[0].recipients[0].purposes[0]", "purpose 'MARKETING' is not declared"),
    ("bad legal basis", lambda d: v0(d)["recipients"][0].update(legal_basis="FRIENDSHIP"),
     "versions[0].recipients[0].legal_basis", "Input should be"),
    ("unknown sub-processor", lambda d: (with_processors(d), v0(d)["processors"][0].update(sub_processors=["GHOST"])),
     "versions[0].processors[0].sub_processors[0]", "sub-processor 'GHOST' is not a declared processor"),
    ("own sub-processor", lambda d: (with_processors(d), v0(d)["processors"][1].update(sub_processors=["CLOUD_HOST"])),
     "versions[0].processors[1].sub_processors[0]", "cannot be its own sub-processor"),
    ("not-retained unknown", lambda d: v0(d)["not_retained"][0].update(item="CARD"),
     "versions[0].not_retained[0].item", "unknown item code 'CARD'"),
    ("retention purpose undeclared", lambda d: v0(d)["retention"].update(after_end_purposes=["ARCHIVE"]),
     "versions[0].retention.after_end_purposes[0]", "purpose 'ARCHIVE' is not declared"),
    ("retention change unknown", lambda d: v0(d)["retention"].update(ends_with=["DEATH"]),
     "versions[0].retention.ends_with[0]", "Input should be"),
    ("threshold zero", lambda d: v0(d)["bulk_access"].update(max_distinct_subjects=0),
     "versions[0].bulk_access.max_distinct_subjects", "greater than or equal to 1"),
    ("date without time", lambda d: v0(d).update(effective_from="2020-01-01"),
     "versions[0].effective_from", "give a time with a UTC offset"),
    ("time without offset", lambda d: v0(d).update(effective_from="2020-01-01T00:00:00"),
     "versions[0].effective_from", "give a time with a UTC offset"),
    ("versions out of order", lambda d: d["versions"].append(dict(v0(d), version="0.9")),
     "versions[1].effective_from", "in order of effective_from"),
    ("duplicate version", lambda d: d["versions"].append(dict(v0(d), effective_from="2021-01-01T00:00:00+09:00")),
     "versions[1].version", "duplicate version label '1.0'"),
    ("no versions", lambda d: d.update(versions=[]), "versions", "at least 1 item"),
    ("bad home country", lambda d: d.update(home_country="Korea"), "home_country", "not an ISO 3166-1"),
]


@pytest.mark.parametrize(("name", "edit", "path", "message"), CASES, ids=[c[0] for c in CASES])
def test_refused_with_the_path_of_the_bad_field(name, edit, path, message):
    error = refuse(edit)
    assert error.path == path
    assert message in error.message
    assert str(error).startswith(f"bad.yaml: {path}: ")


def test_several_errors_report_the_first_and_count_the_rest():
    def edit(d):
        v0(d)["purposes"][0]["items"] = ["FOO", "BAR"]

    error = refuse(edit)
    assert error.path == "versions[0].purposes[0].items[0]"
    assert str(error).endswith("(and 1 more error)")


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("policy_id: [unclosed\n", "line 2, column 1", "not valid YAML"),
        ("- just\n- a list\n", "", "expected a mapping at the top level"),
        ("", "", "expected a mapping at the top level"),
    ],
)
def test_not_yaml_or_not_a_mapping(text, where, message):
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "bad.yaml")
    assert info.value.path == where and message in info.value.message


def test_a_missing_file(tmp_path):
    with pytest.raises(PolicyError, match=r"nope\.yaml: no such file"):
        load_policy(tmp_path / "nope.yaml")


def test_two_versions_the_one_in_force_applies():
    from privaudit.checker import Checker
    from tests.helpers import access, at

    def edit(d):
        newer = dict(v0(d), version="2.0", effective_from="2024-05-01T18:30:00+09:00")  # 09:30 UTC
        newer["purposes"] = [*v0(d)["purposes"], {
            "code": "RESEARCH", "text_ko": "연구", "text_en": "research", "items": ["USAGE_RECORD"], "source": "v2",
        }]
        d["versions"].append(newer)

    data = shipped_document()
    edit(data)
    policy = parse_policy(yaml.safe_dump(data, allow_unicode=True))
    checker = Checker(policy)
    [before] = checker.check(access(purpose="RESEARCH", data_items=["USAGE_RECORD"], occurred_at=at(29)))
    assert (before.rule, before.policy_version) == ("PA-001", "1.0")
    assert checker.check(access(purpose="RESEARCH", data_items=["USAGE_RECORD"], occurred_at=at(30))) == []
    [v2] = checker.check(access(purpose="RESEARCH", data_items=["DEVICE_ID"], occurred_at=at(31)))
    assert (v2.rule, v2.policy_version) == ("PA-002", "2.0")


# -- issue 18, item 9: the most useful error first, strict types, never a traceback ------------------

def _refused_text(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "bad.yaml")
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize(("value", "says"), [
    ("2020-13-01", "not a date"),
    ("2020-02-30T00:00:00+09:00", "not a date"),
    ("2020-01-01T25:00:00+09:00", "not a date"),
    ("2020-01-01T00:00:00+25:00", "not a date"),
    ("99999-01-01T00:00:00Z", "not a date"),
    ("0000-01-01T00:00:00Z", "not a date"),
    ("2020-01-01 00:00:00", "give a time with a UTC offset"),
    ("1577836800", "datetime"),
])
def test_a_bad_effective_from_is_one_line_with_its_path(value: str, says: str):
    data = shipped_document()
    text = yaml.safe_dump(data, allow_unicode=True).replace(
        str(yaml.safe_dump({"x": v0(data)["effective_from"]})).split(": ", 1)[1].strip(), value, 1)
    error = _refused_text(text)
    assert error.path == "versions[0].effective_from" and says in error.message, str(error)


@pytest.mark.parametrize(("where", "wrong", "right"), [
    ("version", "efective_from", "effective_from"),
    ("version", "purpose", "purposes"),
    ("top", "item", "items"),
    ("top", "home_contry", "home_country"),
])
def test_a_misspelt_field_is_named_first_with_what_was_meant(where: str, wrong: str, right: str):
    data = shipped_document()
    holder = v0(data) if where == "version" else data
    holder[wrong] = holder.pop(right)
    error = refuse(lambda d: d.update(data))
    assert f"unknown field '{wrong}' (did you mean '{right}'?)" in error.message, str(error)
    assert "required field is missing" not in error.message.split("(and")[0]


THRESHOLD = "versions[0].bulk_access.max_distinct_subjects"


@pytest.mark.parametrize(("edit", "path"), [
    (lambda d: v0(d)["bulk_access"].update(max_distinct_subjects="100"), THRESHOLD),
    (lambda d: v0(d)["bulk_access"].update(max_distinct_subjects=100.5), THRESHOLD),
    (lambda d: v0(d)["bulk_access"].update(max_distinct_subjects=True), THRESHOLD),
    (lambda d: v0(d).update(version=1.0), "versions[0].version"),
    (lambda d: v0(d)["purposes"][0].update(items="DEVICE_ID"), "versions[0].purposes[0].items"),
])
def test_types_are_strict(edit, path):
    assert refuse(edit).path == path


def test_policy_validate_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    from click.testing import CliRunner

    from privaudit.cli.app import cli

    data = shipped_document()
    v0(data)["efective_from"] = v0(data).pop("effective_from")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    for args in (["policy", "validate", str(path)], ["check", "--policy", str(path), "-"]):
        result = CliRunner().invoke(cli, args, input="", catch_exceptions=False)
        assert result.exit_code == 2, result.output
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("privaudit: error: ") and "did you mean 'effective_from'" in line
