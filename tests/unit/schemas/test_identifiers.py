"""Raw identifiers in events (issue 18, item 12): a subject_id that is a phone number, an e-mail
address or a resident registration number in any of its forms is refused; a resident registration
number in a free-text field is masked before it is stored or published and reported as PA-015, on
the Avro path, the JSON path and in the emitter."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from privaudit.checker import Checker
from privaudit.errors import EventError
from privaudit.policy import load_policy
from privaudit.producers import AuditEmitter, Spool
from privaudit.schemas import Codec
from privaudit.schemas.identifiers import mask_rrn, masked_already, may_hold_rrn, raw_kind
from privaudit.schemas.models import parse_json
from tests.helpers import access, membership, transfer

WHEN = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


PHONES = ["010-1234-5678", "01012345678", "+82 10 1234 5678", "+82-10-1234-5678", "010.1234.5678",
          "tel:010-1234-5678", "TEL: 01012345678", "+82 (0)10 1234 5678", "０１０－１２３４－５６７８"]
EMAILS = ["kim@example.com", " Kim@Example.COM ", "kim＠example.com", "mailto:kim@example.com"]
RRNS = ["900101-1234567", "9001011234567", "900101 1234567", "rrn:900101-1234567", "９００１０１－１２３４５６７",
        "jumin: 900101.1234567"]


@pytest.mark.parametrize(("value", "kind"), [
    *((v, "phone number") for v in PHONES), *((v, "e-mail address") for v in EMAILS),
    *((v, "resident registration number") for v in RRNS),
])
def test_raw_identifiers_are_recognised_in_their_many_forms(value: str, kind: str):
    assert raw_kind(value) == kind
    line = json.loads(access(occurred_at=WHEN).model_dump_json()) | {"subject_id": value}
    with pytest.raises(EventError, match=rf"subject_id: looks like a raw identifier \(an? {kind}\)"):
        parse_json(json.dumps(line, ensure_ascii=False))


@pytest.mark.parametrize("value", ["p-3f2a9c", "p-" + "0" * 32, "device-42", "member#1234", "2026-11-01",
                                   "900101-12345678", "1234567", "order-010-1234"])
def test_pseudonyms_and_other_ids_are_not_taken_for_raw_ones(value: str):
    assert raw_kind(value) is None


@pytest.mark.parametrize(("text", "masked", "count"), [
    ("고객 900101-1234567 요청", "고객 ******-******* 요청", 1),
    ("rrn 9001011234567.", "rrn *************.", 1),
    ("a 900101 1234567 b 850505-2345678", "a ****** ******* b ******-*******", 2),
    ("full ９００１０１－１２３４５６７", "full ******－*******", 1),
    ("order 12345678901234 and 900132-1234567", "order 12345678901234 and 900132-1234567", 0),  # no 32nd day
    ("phone 010-1234-5678", "phone 010-1234-5678", 0),
])
def test_numbers_in_free_text_are_masked_digit_for_digit(text: str, masked: str, count: int):
    assert mask_rrn(text) == (masked, count)
    assert may_hold_rrn(text) or count == 0
    assert masked_already(masked) == bool(count)


def _with_rrn(**fields: object):
    return access(occurred_at=WHEN, **fields)


CASES = [
    {"reason": "고객 900101-1234567 문의"},
    {"actor_id": "staff ９００１０１１２３４５６７"},
    {"reason": "two: 900101 1234567 and 850505-2345678", "actor_id": "rrn:900101-1234567"},
]


@pytest.mark.parametrize("fields", CASES)
def test_the_avro_path_masks_before_storing_and_reports_pa_015(fields: dict[str, str]):
    codec, checker = Codec(), Checker(load_policy())
    event = codec.decode(codec.encode(_with_rrn(**fields)))
    for name in fields:
        assert mask_rrn(str(getattr(event, name)))[1] == 0, getattr(event, name)
    assert set(event.masked_fields) == set(fields)
    [pa015] = [v for v in checker.check(event) if v.rule == "PA-015"]
    assert "resident registration number in " + ", ".join(sorted(fields)) in pa015.message


@pytest.mark.parametrize("fields", CASES)
def test_the_json_path_does_the_same_also_with_unicode_escapes(fields: dict[str, str]):
    line = _with_rrn(**fields).model_dump_json()
    escaped = json.dumps(json.loads(line), ensure_ascii=True)  # digits of full-width forms as \\uff10 ...
    for text in (line, escaped, line.encode("utf-8")):
        event = parse_json(text)
        assert set(event.masked_fields) == set(fields)
        assert "PA-015" in [v.rule for v in Checker(load_policy()).check(event)]


def test_an_event_without_one_is_untouched_and_costs_no_search():
    event = _with_rrn(reason="order 2026-11-01 #12345")
    assert not may_hold_rrn(Codec().encode(event))
    assert Codec().decode(Codec().encode(event)).masked_fields == ()
    assert "PA-015" not in [v.rule for v in Checker(load_policy()).check(event)]


@pytest.mark.parametrize("fields", CASES)
def test_the_emitter_masks_before_publishing_and_the_consumer_still_reports_it(tmp_path, fields):
    emitter = AuditEmitter("127.0.0.1:1", service="support", spool_dir=tmp_path, spool_unacked_after_s=0.1)
    try:
        sent = emitter.access(subject_id="p-1", actor_type="STAFF", action="VIEW", purpose="CUSTOMER_SUPPORT",
                              data_items=["DEVICE_ID"], occurred_at=WHEN, **{"actor_id": "staff-1", **fields})
    finally:
        emitter.close(timeout_s=0.5)
    assert set(sent.masked_fields) == set(fields)
    [spooled] = Spool(tmp_path).pending(10)  # the broker is away: what would have been published
    for field in fields.values():
        for digits in ("1234567", "１２３４５６７", "2345678"):
            if digits in field:
                assert digits.encode() not in spooled.value
    received = Codec().decode(spooled.value)
    assert set(received.masked_fields) == set(fields)  # the mask itself tells the consumer
    assert "PA-015" in [v.rule for v in Checker(load_policy()).check(received)]


def test_membership_and_transfer_free_text_is_covered_too():
    codec = Codec()
    for event in (membership("SIGNUP", occurred_at=WHEN, policy_version="900101-1234567"),
                  transfer(occurred_at=WHEN, task="call 900101-1234567")):
        decoded = codec.decode(codec.encode(event))
        assert decoded.masked_fields and "1234567" not in decoded.model_dump_json()
