"""The shipped policy encodes the source document as the issue reads it, with verbatim citations."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from privaudit.policy import to_millis
from tests.helpers import REPO, shipped_document

SEED = REPO / "policies" / "caresquare-imfine-doctor.source-ko.txt"


def test_purposes_and_items(policy):
    [v] = policy.versions
    assert v.purposes == {
        "MEMBER_MANAGEMENT", "CUSTOMER_SUPPORT", "USAGE_STATISTICS", "SERVICE_PROVISION",
        "CUSTOMIZED_SERVICE", "PAYMENT", "LEGAL_RETENTION",
    }
    for purpose in v.purposes - {"PAYMENT"}:
        assert v.purpose_items[purpose] == {"DEVICE_ID", "USAGE_RECORD"}
    assert v.purpose_items["PAYMENT"] == {"DEVICE_ID", "USAGE_RECORD", "CARD_INFO"}
    assert v.not_retained == {"CARD_INFO"}
    assert v.purpose_text["MEMBER_MANAGEMENT"] == "회원식별 및 가입의사 확인, 회원관리"


def test_recipients_processors_retention_and_threshold(policy):
    [v] = policy.versions
    [issuer] = v.recipients.values()
    assert (issuer.id, issuer.countries, issuer.purposes, issuer.items, issuer.legal_basis) == (
        "CARD_ISSUER", {"KR"}, {"PAYMENT"}, {"CARD_INFO"}, "CONTRACT",
    )
    assert v.processors == {}
    assert v.retention_ends == {"WITHDRAWAL", "CONTRACT_END"} and v.after_end_purposes == {"LEGAL_RETENTION"}
    assert (v.bulk_threshold, v.bulk_window_ms) == (100, 60 * 60_000)
    assert v.home_country == "KR"


def test_vocabulary_categories(policy):
    [v] = policy.versions
    assert {"HEALTH_INFO", "GENETIC_INFO", "BIOMETRIC_INFO"} <= v.sensitive
    assert {"RESIDENT_REG_NO", "PASSPORT_NO", "DRIVER_LICENSE_NO"} <= v.unique_ids
    codes = {item["code"] for item in shipped_document()["items"]}
    assert {"NAME", "PHONE", "EMAIL", "ADDRESS", "BIRTH_DATE", "LOCATION", "CARD_INFO", "DEVICE_ID"} <= codes


def test_first_version_is_dated_2020_01_01_and_says_so(policy):
    [v] = policy.versions
    assert v.effective_from == datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=9)))
    assert "2020-01-01" in shipped_document()["versions"][0]["note"]
    assert policy.version_at(to_millis(v.effective_from)) is v
    assert policy.version_at(to_millis(v.effective_from) - 1) is None


def _sources(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "source" and isinstance(value, str):
                yield path, value
            else:
                yield from _sources(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _sources(value, f"{path}[{i}]")


def test_every_declared_element_cites_a_sentence():
    version = shipped_document()["versions"][0]
    for section in ("collected_items", "purposes", "not_retained", "recipients"):
        for entry in version[section]:
            assert entry.get("source", "").strip(), (section, entry)
    assert version["retention"]["source"].strip()


def test_every_citation_is_verbatim_from_the_source_document():
    """Quotes are compared with whitespace folded (table cells are on separate lines there)."""
    fold = lambda text: re.sub(r"\s+", " ", text).strip()  # noqa: E731
    document = fold(SEED.read_text(encoding="utf-8"))
    cited = list(_sources(shipped_document()))
    assert len(cited) >= 12
    for path, quote in cited:
        if path.endswith("bulk_access"):
            assert "privaudit monitoring setting" in quote  # ours, and says so
            continue
        assert fold(quote) in document, path
