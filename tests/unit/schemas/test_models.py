"""The pydantic models: the JSON form of the contract and what Avro cannot say."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privaudit.errors import EventError
from privaudit.schemas import MODELS, SchemaSet
from privaudit.schemas.models import ENUMS, ShareEvent, parse_json

VALID: dict[str, Any] = {
    "type": "access",
    "event_id": "0b9d3a4e-3f0c-4a3e-9d38-5d0c6a8f2e11",
    "occurred_at": "2024-05-01T09:00:00Z",
    "service": "homepage",
    "subject_id": "p-3f9a1c2e",
    "actor_id": "cs-kim",
    "actor_type": "STAFF",
    "action": "VIEW",
    "purpose": "CUSTOMER_SUPPORT",
    "data_items": ["DEVICE_ID"],
    "source_ip": "10.0.0.1",
}


def parse(**changes: Any):
    return parse_json(json.dumps(VALID | changes))


def test_field_names_match_the_avro_schemas_exactly():
    schemas = SchemaSet()
    for event_type, model in MODELS.items():
        avro_fields = [f["name"] for f in schemas.working[event_type].raw["fields"]]
        assert sorted(avro_fields) == sorted(n for n in model.model_fields if n != "type"), event_type


def test_enum_symbols_match_the_avro_schemas():
    found = {}
    for schema in SchemaSet().working.values():
        for field in schema.raw["fields"]:
            if isinstance(field["type"], dict) and field["type"].get("type") == "enum":
                found[field["type"]["name"]] = tuple(field["type"]["symbols"])
    assert found == ENUMS


def test_z_and_offsets_are_normalised_to_utc_milliseconds():
    event = parse(occurred_at="2024-05-01T18:00:00.123456+09:00")
    assert event.occurred_at == datetime(2024, 5, 1, 9, 0, 0, 123000, tzinfo=UTC)
    assert parse().occurred_at.tzinfo is not None
    assert event.record_count == 1  # the default


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"occurred_at": "2024-05-01T09:00:00"}, "occurred_at: Input should have timezone info"),
        ({"event_id": "1234"}, "event_id: not a UUID"),
        ({"data_items": []}, "data_items: List should have at least 1 item"),
        ({"record_count": 0}, "record_count: Input should be greater than or equal to 1"),
        ({"record_count": "5"}, "record_count: Input should be a valid integer"),
        ({"action": "SELL"}, "action: Input should be"),
        ({"subject_id": "kim@example.com"}, "subject_id: looks like a raw identifier"),
        ({"subject_id": "900101-1234567"}, "subject_id: looks like a raw identifier"),
        ({"subject_id": "010-1234-5678"}, "subject_id: looks like a raw identifier"),
        ({"nickname": "x"}, "nickname: Extra inputs are not permitted"),
        ({"type": "delete"}, "type: must be one of access, share"),
    ],
)
def test_contract_violations_are_one_line_errors(changes, message):
    with pytest.raises(EventError) as info:
        parse(**changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_type_and_invalid_json():
    with pytest.raises(EventError, match="type: must be one of"):
        parse_json(json.dumps({k: v for k, v in VALID.items() if k != "type"}))
    with pytest.raises(EventError, match="Invalid JSON"):
        parse_json("{not json")


def test_country_codes_are_iso_3166_alpha2():
    share = {
        "type": "share", "event_id": VALID["event_id"], "occurred_at": VALID["occurred_at"], "service": "payments",
        "subject_id": "p-1", "recipient_id": "CARD_ISSUER", "purpose": "PAYMENT", "data_items": ["CARD_INFO"],
        "legal_basis": "CONTRACT",
    }
    parsed = parse_json(json.dumps(share | {"recipient_country": "KR"}))
    assert isinstance(parsed, ShareEvent) and parsed.recipient_country == "KR"
    for bad in ("XX", "kr", "KOR"):
        with pytest.raises(EventError, match="recipient_country: not an ISO 3166-1"):
            parse_json(json.dumps(share | {"recipient_country": bad}))


def test_json_form_round_trips():
    event = parse()
    assert parse_json(event.model_dump_json()) == event


def _uuid_by_library(value: str) -> bool:
    import uuid

    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: "urn:uuid:" + str(u)),
    st.text(alphabet="0123456789abcdefABCDEF-{}:urn ", max_size=45),
    st.text(max_size=40),
))
def test_event_id_check_accepts_exactly_what_the_uuid_library_writes(value: str) -> None:
    from privaudit.schemas.models import _uuid_text

    try:
        _uuid_text(value)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == _uuid_by_library(value)
