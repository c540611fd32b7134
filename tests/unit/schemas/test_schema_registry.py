"""Confluent-framed records whose ids only a schema registry knows (``--schema-registry``), against
a stand-in registry over real HTTP."""

from __future__ import annotations

import io
import json

import avro.io
import avro.schema
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from privaudit.bus import free_port
from privaudit.errors import ConfigError, DecodeError, RegistryError, RegistryUnavailable
from privaudit.schemas import Codec, SchemaSet
from privaudit.schemas.schema_registry import SchemaRegistry
from tests.helpers import access, consent
from tests.registry import StandInRegistry

EVENT = access(reason="audit", record_count=7, processor_id=None, data_items=["DEVICE_ID", "USAGE_RECORD"])


@pytest.fixture
def registry():
    with StandInRegistry() as stand_in:
        yield stand_in


def codec_for(url: str, **kwargs) -> Codec:
    return Codec(SchemaSet(registry=SchemaRegistry(url, timeout_s=2), **kwargs))


def working(event_type: str = "access") -> dict:
    return json.loads(json.dumps(SchemaSet().working[event_type].raw))


def confluent_bytes(schema: dict, schema_id: int, record: dict) -> bytes:
    """What Apache Avro's writer makes of ``record`` under ``schema``, framed with ``schema_id``."""
    buf = io.BytesIO()
    avro.io.DatumWriter(avro.schema.parse(json.dumps(schema))).write(record, avro.io.BinaryEncoder(buf))
    return b"\x00" + schema_id.to_bytes(4, "big") + buf.getvalue()


def record_of(event) -> dict:
    return event.model_dump(exclude={"type"})


def test_confluents_own_serializer_registering_the_contract_schema(registry):
    """The Java-style path end to end: Confluent's serializer registers the schema and frames the
    record with the registry's id; the consumer asks the registry for that id, once."""
    client = SchemaRegistryClient({"url": registry.url})
    serializer = AvroSerializer(client, json.dumps(working()), lambda obj, _ctx: obj)
    ctx = SerializationContext("privaudit.events", MessageField.VALUE)
    data = serializer(record_of(EVENT), ctx)
    [schema_id] = registry.schemas
    assert data[:5] == b"\x00" + schema_id.to_bytes(4, "big")
    codec = codec_for(registry.url)
    assert codec.decode(data) == EVENT
    assert codec.decode(serializer(record_of(EVENT), ctx)) == EVENT
    assert registry.lookups(schema_id) == 1  # an id's schema never changes: asked once


def test_a_compatible_schema_of_another_layout_is_read_by_schema_resolution(registry):
    """Fields in another order, no docs, and a field the contract does not have (with a default):
    another implementation's schema for the same record, read into the working schema."""
    theirs = working()
    theirs["fields"] = [{k: v for k, v in f.items() if k != "doc"} for f in reversed(theirs["fields"])]
    theirs["fields"].append({"name": "trace_id", "type": "string", "default": ""})
    theirs.pop("doc", None)
    schema_id = registry.add(theirs)
    data = confluent_bytes(theirs, schema_id, {**record_of(EVENT), "trace_id": "t-1"})
    assert codec_for(registry.url).decode(data) == EVENT


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: s.update(fields=[f for f in s["fields"] if f["name"] != "service"]),
         "privaudit.events.Access as registered cannot be read as access"),
        (lambda s: s.update(name="Invoice", namespace="billing"),
         "billing.Invoice is none of the contract's types"),
    ],
    ids=["a-required-field-missing", "another-record"],
)
def test_a_schema_that_cannot_be_read_sends_the_record_to_the_dlq_with_the_reason(registry, change, reason):
    theirs = working()
    change(theirs)
    schema_id = registry.add(theirs)
    codec = codec_for(registry.url)
    data = b"\x00" + schema_id.to_bytes(4, "big") + b"\x02"
    with pytest.raises(DecodeError, match=f"Confluent schema id {schema_id}: .*{reason}"):
        codec.decode(data)
    with pytest.raises(DecodeError):
        codec.decode(data)
    assert registry.lookups(schema_id) == 1


def test_unknown_ids_and_other_schema_types_are_dead_letters(registry):
    proto = registry.add('syntax = "proto3"; message Access { string event_id = 1; }', "PROTOBUF")
    refers = registry.add(working(), references=[{"name": "x", "subject": "y", "version": 1}])
    codec = codec_for(registry.url)
    with pytest.raises(DecodeError, match=r"^unknown Confluent schema id 999 \(the schema registry has none\)$"):
        codec.decode(b"\x00" + (999).to_bytes(4, "big") + b"\x00")
    with pytest.raises(DecodeError, match=f"Confluent schema id {proto} is a PROTOBUF schema"):
        codec.decode(b"\x00" + proto.to_bytes(4, "big") + b"\x00")
    with pytest.raises(DecodeError, match="refers to other schemas"):
        codec.decode(b"\x00" + refers.to_bytes(4, "big") + b"\x00")


def test_the_shipped_ids_are_not_used_with_a_registry_but_a_given_table_is(registry, tmp_path):
    """The shipped table's id 1 may be anything in the deployment's registry."""
    shipped = Codec(framing="confluent").encode(EVENT)
    assert shipped[:5] == b"\x00\x00\x00\x00\x01"
    with pytest.raises(DecodeError, match="unknown Confluent schema id 1 "):
        codec_for(registry.url).decode(shipped)
    table = tmp_path / "ids.json"
    table.write_text(json.dumps({"1": "access@1"}))
    assert codec_for(registry.url, confluent_ids=table).decode(shipped) == EVENT
    assert registry.lookups(1) == 1  # the table's id was not asked for


def test_a_registry_that_cannot_answer_is_waited_for_not_a_reason_to_dead_letter(registry):
    schema_id = registry.add(working("consent"))
    event = consent("THIRD_PARTY", "AD_PARTNER", purposes=["MARKETING"], data_items=["DEVICE_ID"])
    data = confluent_bytes(working("consent"), schema_id, record_of(event))
    codec = codec_for(registry.url)
    registry.down = True
    with pytest.raises(RegistryUnavailable, match="HTTP 503 .*forwarding the request"):
        codec.decode(data)
    registry.down = False  # not remembered as an answer: asked again
    assert codec.decode(data) == event
    gone = codec_for(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryUnavailable, match="cannot reach the schema registry"):
        gone.decode(data)


def test_credentials_in_the_url_are_sent_and_never_shown(tmp_path):
    with StandInRegistry(credentials=("svc", "s3cret")) as registry:
        schema_id = registry.add(working())
        data = confluent_bytes(working(), schema_id, record_of(EVENT))
        host = registry.url.removeprefix("http://")
        assert codec_for(f"http://svc:s3cret@{host}").decode(data) == EVENT
        with pytest.raises(RegistryError, match="refused GET /schemas/ids/.*HTTP 401") as refused:
            codec_for(f"http://svc:wrong@{host}").decode(data)
        assert "wrong" not in str(refused.value) and "svc:***@" in str(refused.value)
        assert not isinstance(refused.value, RegistryUnavailable)  # stops the consumer, not retried


def test_an_address_that_is_not_a_registry_is_refused(registry):
    not_one = SchemaRegistry(registry.url + "/elsewhere", timeout_s=2)
    with pytest.raises(RegistryError, match="is this address a schema registry"):
        not_one.probe()
    with pytest.raises(RegistryError, match="is this address a schema registry"):
        Codec(SchemaSet(registry=not_one)).decode(b"\x00\x00\x00\x00\x07\x00")
    SchemaRegistry(registry.url).probe()
    with pytest.raises(ConfigError, match="expected an http:// or https:// URL"):
        SchemaRegistry("registry:8081")


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"sche"],
                         ids=["closed-without-answer", "answer-cut-off"])
def test_a_connection_lost_mid_answer_is_unavailable_not_a_crash(reply):
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def answer_badly() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(reply)
        conn.close()

    threading.Thread(target=answer_badly, daemon=True).start()
    try:
        with pytest.raises(RegistryUnavailable, match="cannot reach the schema registry"):
            SchemaRegistry(f"http://127.0.0.1:{server.getsockname()[1]}", timeout_s=5).schema(7)
    finally:
        server.close()
