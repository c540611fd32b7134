"""Avro round trips in both framings, other implementations' bytes, and corrupted input."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import struct

import avro.io
import avro.schema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privaudit.errors import DecodeError, EventError, SchemaError
from privaudit.schemas import Codec, Event, SchemaSet
from privaudit.schemas.registry import EVENT_TYPES
from tests.helpers import access, consent, membership, share, transfer

SAMPLES: list[Event] = [
    access(reason="audit", record_count=7, processor_id=None, data_items=["DEVICE_ID", "USAGE_RECORD"]),
    share(consent_id="c-9"),
    transfer(from_processor_id="CALL_CENTER"),
    consent("THIRD_PARTY", "AD_PARTNER", purposes=["MARKETING"], data_items=["DEVICE_ID"]),
    membership("WITHDRAWAL", policy_version="1.0"),
]


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet()


@pytest.mark.parametrize("framing", ["single-object", "confluent"])
@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_round_trip(schemas, framing, event):
    codec = Codec(schemas, framing=framing)
    data = codec.encode(event)
    assert data[:2] == b"\xc3\x01" if framing == "single-object" else data[:1] == b"\x00"
    assert codec.decode(data) == event


def test_either_framing_is_recognised_by_one_decoder(schemas):
    single, confluent = Codec(schemas), Codec(schemas, framing="confluent")
    for event in SAMPLES:
        assert single.decode(confluent.encode(event)) == event
        assert confluent.decode(single.encode(event)) == event


def test_single_object_header_is_the_spec_canonical_form_fingerprint(schemas):
    """The spec's canonical form writes a primitive with a logicalType as its bare name."""
    for event_type in EVENT_TYPES:
        ours = schemas.working[event_type]
        canonical = json.dumps(ours.raw)
        for field in ours.raw["fields"]:
            if field["name"] == "occurred_at":
                assert field["type"] == {"type": "long", "logicalType": "timestamp-millis"}
        spec_form = avro.schema.parse(canonical).canonical_form.replace('{"type":"long"}', '"long"')
        # Apache Avro's CRC-64-AVRO over the spec form: an independent check of fastavro's
        assert ours.fingerprint == bytes(avro.schema.parse(spec_form).fingerprint("CRC-64-AVRO"))
        assert Codec(schemas).encode(next(e for e in SAMPLES if e.type == event_type))[2:10] == ours.fingerprint


def test_the_known_crc64_avro_vector():
    """Avro's test vector: fingerprint64 of "int" is 8247732601305521295, written little-endian."""
    from fastavro.schema import fingerprint

    written = bytes.fromhex(fingerprint('"int"', "CRC-64-AVRO"))
    assert int.from_bytes(written, "little") == 8247732601305521295


def _apache_avro_bytes(schemas: SchemaSet, event, *, confluent_id: int | None = None) -> bytes:
    """Frame a datum written by the Apache Avro library, not by fastavro."""
    schema = avro.schema.parse(json.dumps(schemas.working[event.type].raw))
    record = event.model_dump(exclude={"type"})
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(buf))
    if confluent_id is None:
        header = b"\xc3\x01" + bytes(schema.fingerprint("CRC-64-AVRO"))
    else:
        header = b"\x00" + struct.pack(">I", confluent_id)
    return header + buf.getvalue()


def test_a_deployment_gives_the_ids_its_registry_assigned(schemas, tmp_path):
    table = tmp_path / "ids.json"
    table.write_text(json.dumps({str(100 + i): f"{t}@1" for i, t in enumerate(EVENT_TYPES)}))
    codec = Codec(SchemaSet(confluent_ids=table))
    for event in SAMPLES:
        their_id = 100 + EVENT_TYPES.index(event.type)
        assert codec.decode(_apache_avro_bytes(schemas, event, confluent_id=their_id)) == event
    with pytest.raises(DecodeError, match="unknown Confluent schema id 1"):  # the table replaces the shipped one
        codec.decode(_apache_avro_bytes(schemas, SAMPLES[0], confluent_id=1))
    framed = Codec(SchemaSet(confluent_ids=table), framing="confluent").encode(SAMPLES[0])
    assert framed[:5] == b"\x00" + struct.pack(">I", 100)


@pytest.mark.parametrize(("table", "message"), [
    ({"7": "access@9"}, r"ids\.json: id '7': no schema access@9"),
    ({"seven": "access@1"}, r"ids\.json: id 'seven': invalid literal"),
    (["access@1"], r"ids\.json: "),
    (None, r"ids\.json: no such Confluent id table"),
])
def test_a_bad_id_table_is_refused_with_its_path(tmp_path, table, message):
    path = tmp_path / "ids.json"
    if table is not None:
        path.write_text(json.dumps(table))
    with pytest.raises(SchemaError, match=message):
        SchemaSet(confluent_ids=path)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_decodes_what_apache_avro_wrote(schemas, event):
    codec = Codec(schemas)
    assert codec.decode(_apache_avro_bytes(schemas, event)) == event
    confluent_id = 1 + EVENT_TYPES.index(event.type)
    assert codec.decode(_apache_avro_bytes(schemas, event, confluent_id=confluent_id)) == event


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "unknown framing"),
        (b"{\"type\": \"access\"}", "unknown framing"),
        (b"\xc3\x01\x00\x01", "truncated single-object header"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown schema fingerprint"),
        (b"\x00\x00\x00\x00\x63\x02", "unknown Confluent schema id 99"),
        (b"\x00\x00\x01", "truncated Confluent header"),
    ],
)
def test_bad_headers_are_clear_decode_errors(schemas, data, reason):
    with pytest.raises(DecodeError, match=reason):
        Codec(schemas).decode(data)


def test_truncated_datum_and_trailing_bytes(schemas):
    codec = Codec(schemas)
    data = codec.encode(SAMPLES[0])
    for cut in (11, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError, match="does not match its schema"):
            codec.decode(data[:cut])
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        codec.decode(data + b"\x00")


def test_a_bad_enum_index_is_a_decode_error(schemas):
    codec = Codec(schemas)
    record = SAMPLES[4].model_dump(exclude={"type"})
    good = codec.encode_record("membership", record)
    bad = good[:-1] + b"\x0e"  # the change enum is the last field: index 7 does not exist
    with pytest.raises(DecodeError):
        codec.decode(bad)


def test_a_valid_datum_that_breaks_the_contract_is_an_event_error(schemas):
    codec = Codec(schemas)
    record = SAMPLES[0].model_dump(exclude={"type"}) | {"data_items": [], "event_id": "not-a-uuid"}
    data = codec.encode_record("access", record)
    with pytest.raises(EventError, match=r"access: event_id: not a UUID.*data_items"):
        codec.decode(data)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"", b"\x00\x00\x00\x00\x01", b"\xc3\x01"]))
def test_random_bytes_never_crash(schemas, noise, prefix):
    codec = Codec(schemas)
    if prefix == b"\xc3\x01":
        prefix += schemas.working["access"].fingerprint
    with contextlib.suppress(DecodeError, EventError):
        codec.decode(prefix + noise)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_flipped_bytes_in_a_real_record_never_crash(schemas, data):
    codec = Codec(schemas)
    raw = bytearray(codec.encode(data.draw(st.sampled_from(SAMPLES))))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(10, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError, EventError):
        codec.decode(bytes(raw))


def test_old_released_bytes_are_read_with_the_working_schema(tmp_path):
    """Schema evolution: working access adds a field with a default; v1 bytes still decode."""
    root = tmp_path / "schemas"
    shutil.copytree(SchemaSet().root / "avro", root / "avro")
    shutil.copytree(SchemaSet().root / "released", root / "released")
    v1 = SchemaSet(root)
    old_bytes = Codec(v1).encode(SAMPLES[0])

    path = root / "avro" / "access.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "channel", "type": ["null", "string"], "default": None})
    path.write_text(json.dumps(schema))
    evolved = SchemaSet(root)
    assert evolved.working["access"].fingerprint != v1.working["access"].fingerprint

    event_type, record = Codec(evolved).decode_record(old_bytes)
    assert event_type == "access" and record["channel"] is None and record["event_id"] == SAMPLES[0].event_id
