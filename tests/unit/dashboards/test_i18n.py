"""Korean first: every text a person reads is in the catalogue, translated, with its parameters;
the days and times a person reads are KST."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from privaudit.checker.rules import CATALOGUE
from privaudit.dashboards.queries import BadFilter, Filters
from privaudit.dashboards.words import CODES, COLUMNS, names, rule_text
from privaudit.errors import ConfigError
from privaudit.i18n import catalogue, gettext, html_texts, in_kst, kst_text, language, translator
from privaudit.policy import load_policy
from tests.helpers import REPO

KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "t": None, "tf": None}


def extracted() -> set[str]:
    """What ``make messages`` extracts: every marked text of the code and the page."""
    with (REPO / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = {message for _, _, message, _, _ in
             extract_from_dir(str(REPO), method_map, options_map, keywords=KEYWORDS)}
    return {m if isinstance(m, str) else m[0] for m in found}


def test_every_marked_text_has_its_korean_in_the_catalogue() -> None:
    texts = extracted()
    ko = catalogue("ko")
    assert len(texts) > 250  # the console, the report, the rules: not an empty extraction
    missing = sorted(t for t in texts if not ko.get(t))
    assert missing == [], "run `make messages` and translate privaudit/locale/ko/LC_MESSAGES/privaudit.po"
    stale = sorted(set(ko) - texts)
    assert stale == [], "the catalogue holds texts the code no longer has: `make messages`"


def test_a_translation_keeps_every_parameter_and_is_korean() -> None:
    hangul = re.compile("[가-힣]")
    for source, korean in catalogue("ko").items():
        assert set(re.findall(r"\{(\w+)\}", source)) == set(re.findall(r"\{(\w+)\}", korean)), source
        assert hangul.search(korean) or source in ("privaudit",), f"not Korean: {source!r} -> {korean!r}"


def test_the_page_the_rules_and_the_codes_are_all_in_the_catalogue() -> None:
    ko = catalogue("ko")
    page = html_texts(REPO / "dashboards" / "static" / "index.html")
    assert len(page) > 20 and [t for t in page if t not in ko] == []
    for rule in CATALOGUE:
        text = rule_text(rule.id, "ko")
        assert rule.remedy and text["title"] != rule.title and text["law"] != rule.law
        assert text["remedy"] != rule.remedy
    assert rule_text("PA-011", "en")["title"] == "download or export without a reason"
    assert rule_text("PA-017", "ko")["law"] == "안전성 확보조치 기준 제8조제3항"
    for field, codes in CODES.items():
        for code, word in codes.items():
            assert gettext(word, "ko") != word, f"{field}.{code}"
    assert all(gettext(text, "ko") != text for text in COLUMNS.values())


def test_the_policy_names_items_purposes_and_parties_in_either_language() -> None:
    policy = load_policy()
    ko, en = names(policy, "ko"), names(policy, "en")
    assert ko["item"]["HEALTH_INFO"] == "건강에 관한 정보" and en["item"]["HEALTH_INFO"] == "health information"
    assert ko["purpose"]["PAYMENT"] == "결제 서비스 이용 처리"
    assert ko["action"]["DOWNLOAD"] == "다운로드" and en["action"]["DOWNLOAD"] == "download"
    assert ko["actor_type"]["SYSTEM"] == "시스템" and ko["column"]["occurred_at"] == "시각 (KST)"
    assert "CARD_ISSUER" in ko["recipient"] and ko["rule"]["PA-012"] == "대량 접근"


def test_languages() -> None:
    assert language(None) == "ko" and language("") == "ko" and language("en") == "en" and language("ko-KR") == "ko"
    assert language("EN_us") == "en"
    with pytest.raises(ConfigError, match="choose one of ko, en"):
        language("fr")
    _ = translator("en")
    assert _("Overview") == "Overview" and translator("ko")("Overview") == "개요"
    assert translator("ko")("a text nobody marked") == "a text nobody marked"  # the English, never a blank


def test_a_persons_day_is_a_kst_day() -> None:
    f = Filters.parse({"from": "2026-11-01", "to": "2026-11-30"}, datetime.min, datetime.min)
    p = f.parameters()
    assert p["from"] == datetime(2026, 10, 31, 15, tzinfo=UTC) and p["to"] == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert in_kst(datetime(2026, 10, 31, 15, 0)).isoformat() == "2026-11-01T00:00:00+09:00"  # naive: UTC
    assert kst_text(datetime(2026, 12, 31, 15, 30, tzinfo=UTC)) == "2027-01-01 00:30:00 KST"
    for bad in ({"who": "robots"}, {"reason": "maybe"}, {"actor": "x" * 201}):
        with pytest.raises(BadFilter):
            Filters.parse({"from": "2026-11-01", "to": "2026-11-30", **bad}, datetime.min, datetime.min)


def test_a_stored_verdict_is_said_in_either_language_with_its_codes_named() -> None:
    from privaudit.checker.rules import Violation
    from privaudit.dashboards.words import said, say

    v = Violation.of("PA-011", "medium", "1.0", "{action} of {count} record(s) without a reason",
                     action="DOWNLOAD", count=3)
    assert v.message == "DOWNLOAD of 3 record(s) without a reason"
    args = '{"action": "DOWNLOAD", "count": "3"}'
    words = names(load_policy(), "ko")
    assert say(v.message, v.template, args, "ko", words) == "사유 없는 다운로드 (DOWNLOAD) 3건"
    assert say(v.message, v.template, args, "en", words) == v.message
    # stored before templates were (migration 8), or with parameters that do not fit: the English line
    assert say(v.message, "", "", "ko", words) == v.message
    assert say(v.message, v.template, '{"count": "3"}', "ko", words) == v.message
    assert say(v.message, v.template, "not json", "ko", words) == v.message
    items = Violation.of("PA-014", "critical", "1.0", "sensitive {items} without a SENSITIVE consent",
                         items="HEALTH_INFO, GENETIC_INFO")
    assert say(items.message, items.template, '{"items": "HEALTH_INFO, GENETIC_INFO"}', "ko", words) == (
        "민감정보 건강에 관한 정보 (HEALTH_INFO), 유전정보 (GENETIC_INFO)에 대한 별도 동의(SENSITIVE) 없음")
    columns = ["rule", "message", "message_template", "message_args"]
    rows = [["PA-011", v.message, v.template, args]]
    assert said(columns, rows, "ko", words) == ["rule", "message"]
    assert rows == [["PA-011", "사유 없는 다운로드 (DOWNLOAD) 3건"]]


def test_every_message_the_checker_makes_is_its_template_with_its_parameters() -> None:
    """Each verdict of a run with every kind of violation: the English line is the template filled,
    and the template is a text of the catalogue (so Korean exists for it)."""
    from privaudit.checker import Checker
    from privaudit.producers.simulator import SimulationConfig, simulate

    policy = load_policy()
    checker = Checker(policy)
    seen: set[str] = set()
    for event in simulate(SimulationConfig(events=4000, seed=5, violation_rate=0.3)):
        for v in checker.check(event):
            assert v.template in catalogue("ko"), v.template
            assert v.message == v.template.format(**dict(v.args))
            seen.add(v.rule)
    assert len(seen) >= 12
