"""Records that crash, stall or vanish (issue 18, items 3-5), at the decoder: a tombstone, a record
over the size limit, arrays announcing more items than allowed (refused before anything is built,
in bounded time and memory), dead letters that always fit the broker, events from the future."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
from datetime import UTC, datetime

import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privaudit.bus import Record
from privaudit.checker import Checker
from privaudit.consumers.batch import DEAD_LETTER_VALUE_LIMIT, DeadLetter, process
from privaudit.errors import REASON_LIMIT, DecodeError, EventError
from privaudit.policy import load_policy, to_millis
from privaudit.schemas import Codec, Event
from privaudit.schemas.bounds import check_arrays
from privaudit.schemas.codec import DEFAULT_MAX_RECORD_BYTES
from privaudit.schemas.models import MAX_ITEMS, parse_json
from tests.helpers import access, consent

NOW = datetime(2026, 11, 2, tzinfo=UTC)
NOT_AFTER = to_millis(NOW) + 86_400_000  # the default allowance: a day


def _record(event_type: str, fields: dict[str, object], codec: Codec | None = None) -> bytes:
    """Avro bytes written with the working schema, whatever the contract says of the fields."""
    codec = codec or Codec()
    return codec.encode_record(event_type, fields)


def _access_fields(**changes: object) -> dict[str, object]:
    fields = access(occurred_at=datetime(2026, 11, 1, tzinfo=UTC)).model_dump(exclude={"type"})
    fields.update(changes)
    return fields


# -- item 3: tombstones --------------------------------------------------------------------------

def test_a_tombstone_is_a_dead_letter_with_its_reason_not_a_crash():
    records = [Record("t", 0, 0, b"p-1", None, 0), Record("t", 0, 1, None, None, 0),
               Record("t", 0, 2, b"p-2", Codec().encode(access()), 0)]
    batch = process(records, Codec(), Checker(load_policy()))
    assert [d.record.offset for d in batch.dead] == [0, 1]
    assert all(d.kind == "decode" and "tombstone" in d.reason for d in batch.dead)
    assert len(batch.events["event_id"]) == 1
    letter = batch.dead[0]
    assert letter.value() is None and ("privaudit.tombstone", b"true") in letter.headers()
    with pytest.raises(DecodeError, match="tombstone"):
        Codec().decode(None)


# -- item 4: size ---------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [DEFAULT_MAX_RECORD_BYTES + 1, 10 * 1024 * 1024])
def test_a_record_over_the_size_limit_is_refused_before_it_is_read(size: int):
    data = Codec().encode(access()) + b"\x00" * (size - len(Codec().encode(access())))
    started = time.perf_counter()
    with pytest.raises(DecodeError, match=rf"a record of {size:,} bytes, over the limit of 1,048,576"):
        Codec().decode(data)
    assert time.perf_counter() - started < 0.1
    with pytest.raises(DecodeError, match="over the limit of 1,000"):
        Codec(max_record_bytes=1000).decode(Codec().encode(access(reason="x" * 2000)))


def _bounded(call, *, seconds: float, megabytes: float) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        call()
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"{elapsed:.2f} s"
    assert peak < megabytes * 1024 * 1024, f"{peak / 1024 / 1024:.1f} MB at the peak"


@pytest.mark.parametrize(("field", "items"), [
    ("data_items", [""] * 900_000),  # the reported one: 900 KB of empty strings
    ("data_items", ["A"] * 400_000),
    ("data_items", ["DEVICE_ID"] * (MAX_ITEMS + 1)),
])
def test_an_array_past_the_limit_is_refused_before_objects_are_built(field: str, items: list[str]):
    codec = Codec()
    data = _record("access", _access_fields(**{field: items}))
    assert len(data) <= DEFAULT_MAX_RECORD_BYTES

    def decode() -> None:
        with pytest.raises((DecodeError, EventError), match=rf"{field}.*(more than {MAX_ITEMS}|at most {MAX_ITEMS})"):
            codec.decode(data)

    _bounded(decode, seconds=2.0, megabytes=16)


def test_arrays_in_blocks_and_in_other_fields_are_counted_the_same_way():
    """An Avro array may come in several blocks (negative counts carry their size in bytes); every
    array field is walked, not only data_items."""
    codec = Codec()
    writer = codec.schemas.working["consent"]
    fields = consent("PURPOSE", "X", occurred_at=datetime(2026, 11, 1, tzinfo=UTC)).model_dump(exclude={"type"})
    fields["purposes"] = ["P"] * 300_000
    buf = io.BytesIO()
    schemaless_writer(buf, writer.parsed, fields)
    data = codec._headers["consent"] + buf.getvalue()
    with pytest.raises(DecodeError, match=r"purposes holds more than 256 items"):
        codec.decode(data)
    # an array written in blocks of 1,000 empty strings, each with its byte size (a negative count)
    block = _zigzag(-1000) + _zigzag(1000) + b"\x00" * 1000
    datum = block * 300 + _zigzag(0)
    with pytest.raises(DecodeError, match=r"x: items holds more than 256 items \(at least 1,000\)"):
        check_arrays(datum, 0, {"type": "record", "name": "r", "fields": [
            {"name": "items", "type": {"type": "array", "items": "string"}}]}, MAX_ITEMS, "x")
    # ... and in a map's values
    entry = _zigzag(1) + b"k" + _zigzag(0)
    with pytest.raises(DecodeError, match="more than 256"):
        check_arrays(_zigzag(400) + entry * 400 + _zigzag(0), 0, {"type": "map", "values": "string"}, MAX_ITEMS, "m")


def _zigzag(n: int) -> bytes:
    """Avro's variable-length zig-zag ``long``."""
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(MAX_ITEMS + 1, 200_000), st.sampled_from(["", "A", "DEVICE_ID"]))
def test_any_long_array_is_refused_in_bounded_memory(n: int, item: str):
    data = _record("access", _access_fields(data_items=[item] * n))
    if len(data) > DEFAULT_MAX_RECORD_BYTES:
        return
    _bounded(lambda: pytest.raises(DecodeError, Codec().decode, data), seconds=2.0, megabytes=16)


# -- item 4: reasons and dead letters are bounded --------------------------------------------------

def test_a_reason_is_cut_to_the_limit_and_a_dead_letter_fits_the_broker():
    huge = b"\xc3\x01" + b"\x01" * 8 + b"x" * 2_000_000  # an unknown fingerprint, 2 MB long
    letter = DeadLetter(Record("t", 3, 77, b"k", huge, 0), "decode", "why: " + "y" * 55_000_000)
    assert len(letter.reason) <= REASON_LIMIT + 40
    value = letter.value()
    assert value is not None and len(value) < DEAD_LETTER_VALUE_LIMIT
    note = json.loads(value)
    assert note["size"] == len(huge) and len(note["sha256"]) == 64
    headers = dict(letter.headers())
    assert headers["source.offset"] == b"77" and headers["privaudit.value-size"] == str(len(huge)).encode()
    assert sum(len(k) + len(v) for k, v in letter.headers()) < 4096
    small = DeadLetter(Record("t", 0, 1, None, b"abc", 0), "decode", "short")
    assert small.value() == b"abc" and "privaudit.value-size" not in dict(small.headers())


def test_a_reason_never_carries_a_resident_registration_number():
    letter = DeadLetter(Record("t", 0, 1, None, b"x", 0), "contract", "country: not a code: '900101-1234567'")
    assert "1234567" not in letter.reason and "******-*******" in letter.reason


# -- item 5: events from the future -----------------------------------------------------------------

@pytest.mark.parametrize("when", [datetime(2026, 11, 3, 0, 0, 1, tzinfo=UTC), datetime(2106, 2, 8, tzinfo=UTC),
                                  datetime(2150, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)])
def test_an_event_later_than_now_plus_the_allowance_breaks_the_contract(when: datetime):
    codec = Codec()
    data = codec.encode(access(occurred_at=when))
    with pytest.raises(EventError, match="later than now plus the clock-skew allowance"):
        codec.decode(data, not_after_ms=NOT_AFTER)
    with pytest.raises(EventError, match="later than now plus the clock-skew allowance"):
        parse_json(access(occurred_at=when).model_dump_json(), not_after_ms=NOT_AFTER)
    batch = process([Record("t", 0, 0, None, data, 0)], codec, Checker(load_policy()), not_after_ms=NOT_AFTER)
    [dead] = batch.dead
    assert dead.kind == "contract" and len(batch.events["event_id"]) == 0


def test_an_event_within_the_allowance_is_taken():
    within = datetime(2026, 11, 2, 23, 59, tzinfo=UTC)
    assert Codec().decode(Codec().encode(access(occurred_at=within)), not_after_ms=NOT_AFTER).occurred_at == within


@pytest.mark.parametrize("millis", [2**62, -(2**62), 253402300800000, -62135596800001])
def test_a_timestamp_no_calendar_holds_is_a_decode_error(millis: int):
    data = _record("access", _access_fields(occurred_at=millis))
    with pytest.raises((DecodeError, EventError)):
        Codec().decode(data, not_after_ms=NOT_AFTER)


# -- fuzz: lengths and counts spliced into real records ----------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_spliced_length_or_count_never_crashes_and_never_runs_away(data: st.DataObject):
    """Varints (the lengths and counts Avro is made of) spliced into real records: whatever they
    announce, decoding ends at once with an event or a one-line error."""
    codec = Codec()
    samples: list[Event] = [access(reason="r" * 40), consent("PURPOSE", "X", purposes=["A", "B"])]
    event = data.draw(st.sampled_from(samples))
    raw = codec.encode(event)
    at = data.draw(st.integers(10, len(raw) - 1))
    cut = data.draw(st.integers(0, 3))
    value = data.draw(st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-300, 300)))
    spliced = raw[:at] + _zigzag(value) + raw[at + cut:]
    started = time.perf_counter()
    try:
        codec.decode(spliced, not_after_ms=NOT_AFTER)
    except (DecodeError, EventError) as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2 * REASON_LIMIT
    assert time.perf_counter() - started < 1.0
