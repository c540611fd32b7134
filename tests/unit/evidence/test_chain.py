"""The pieces of the evidence without a broker or an engine: the content hash, the repeat / rewrite
decision and its window, the chain over every offset, the signed statement, and PA-016 in check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from privaudit.bus import Record
from privaudit.canonical import CONTENT_FIELDS, content_hash, content_text
from privaudit.checker import Checker
from privaudit.checker.lines import check_lines
from privaudit.consumers.batch import process
from privaudit.consumers.seen import Seen
from privaudit.errors import ConfigError
from privaudit.evidence import GENESIS, Chain, RecordKind, Signer, Verifier, load_signer, statement
from privaudit.evidence.chain import link
from privaudit.policy import load_policy
from privaudit.schemas import Codec
from privaudit.schemas.models import stored_content
from tests.helpers import access

WHEN = datetime(2026, 11, 3, 9, tzinfo=UTC)
ID = "7d4b8f0e-1c2a-4b3c-9d8e-0f1a2b3c4d5e"


def _records(events, *, start: int = 0, gaps: tuple[int, ...] = ()) -> list[Record]:
    codec, out, offset = Codec(), [], start
    for e in events:
        while offset in gaps:
            offset += 1
        out.append(Record("privaudit.events", 0, offset, b"k", codec.encode(e), 0))
        offset += 1
    return out


# -- the content ----------------------------------------------------------------------------------

def test_the_content_leaves_out_the_framing_and_the_case_of_the_id():
    a = access(event_id=ID, occurred_at=WHEN)
    b = access(event_id=ID.upper(), occurred_at=WHEN.astimezone(UTC))
    assert content_hash(stored_content(a)) == content_hash(stored_content(b))
    assert content_hash(stored_content(a)) != content_hash(stored_content(access(event_id=ID, occurred_at=WHEN,
                                                                                 purpose="MARKETING")))


@given(st.lists(st.one_of(st.none(), st.text(max_size=8), st.lists(st.text(max_size=4), max_size=3)),
                min_size=2, max_size=6))
def test_the_text_is_unambiguous_however_strings_are_split(values):
    """Lengths before every string: no two different value lists give the same text (a value that
    contains another's separator cannot forge it)."""
    joined = [("".join(v) if isinstance(v, list) else v) for v in values]
    assert content_text(values) == content_text(list(values))
    if values != joined and any(isinstance(v, list) for v in values):
        assert content_text(values) != content_text(joined)


def test_stored_values_and_event_values_give_the_same_text():
    """What the engine hands back (a UUID, a naive UTC datetime) reads as what the event held."""
    event = stored_content(access(event_id=ID, occurred_at=WHEN))
    back = list(event)
    back[0] = UUID(ID)
    back[CONTENT_FIELDS.index("occurred_at")] = WHEN.replace(tzinfo=None)
    assert content_text(back) == content_text(event)


# -- repeats, rewrites and the chain --------------------------------------------------------------

def test_a_repeat_is_stored_once_and_a_rewrite_is_kept_aside_with_pa016(policy):
    original = access(event_id=ID, occurred_at=WHEN)
    altered = access(event_id=ID, occurred_at=WHEN, actor_id="staff-9")
    batch = process(_records([original, original, altered]), Codec(), Checker(policy, bulk_access=False))
    assert batch.events["kafka_offset"] == [0]
    assert batch.repeats["kafka_offset"] == [1] and batch.repeats["first_offset"] == [0]
    assert batch.rewrites["kafka_offset"] == [2] and batch.rewrites["actor_id"] == ["staff-9"]
    assert batch.rewrites["first_offset"] == [0]
    assert [r for r, o in zip(batch.violations["rule"], batch.violations["kafka_offset"], strict=True)
            if o == 2] == ["PA-016"]
    assert batch.ledger is not None and batch.ledger.counts == (1, 0, 1, 1, 0)
    assert json.loads(batch.published[-1][1])["rule"] == "PA-016"


def test_the_window_is_counted_in_offsets_so_a_replay_decides_the_same(policy):
    e = access(event_id=ID, occurred_at=WHEN)
    seen = Seen(window=2)
    codec, checker = Codec(), Checker(policy, bulk_access=False)
    process(_records([e]), codec, checker, seen=seen)
    others = [access(occurred_at=WHEN + timedelta(seconds=i)) for i in range(2)]
    process(_records(others, start=1), codec, checker, seen=seen)
    late = process(_records([e], start=3), codec, checker, seen=seen)  # offset 0 is 3 back: out of the window
    assert late.events["kafka_offset"] == [3] and not late.repeats["event_id"]
    within = Seen(window=3)
    process(_records([e]), codec, checker, seen=within)
    again = process(_records([e], start=3), codec, checker, seen=within)
    assert again.repeats["kafka_offset"] == [3]


def test_every_offset_is_in_the_chain_and_a_skipped_one_is_absent(policy):
    events = [access(occurred_at=WHEN + timedelta(seconds=i)) for i in range(4)]
    records = _records(events, start=5, gaps=(6, 7))  # 5, 8, 9, 10
    records.insert(1, Record("privaudit.events", 0, 6, b"k", b"not avro", 0))  # 6: a dead letter; 7 never came
    seen = Seen(chain=Chain(b"\x01" * 32, 3))  # the chain stood at offset 3: 3 and 4 never came
    batch = process(records, Codec(), Checker(policy, bulk_access=False), seen=seen)
    entry = batch.ledger
    assert entry is not None and entry.first_offset == 3 and entry.prev_head == b"\x01" * 32
    assert sum(entry.counts) == batch.last_offset - 3 + 1
    assert entry.counts[1] == 1 and entry.counts[4] == 3  # the dead letter; 3, 4 and 7 absent
    head = b"\x01" * 32
    offsets = range(3, batch.last_offset + 1)
    assert seen.chain.head == entry.head != head and seen.chain.next_offset == offsets[-1] + 1
    with pytest.raises(ValueError, match="follows"):
        Chain(GENESIS, 5).add(7, RecordKind.ABSENT)
    assert link(GENESIS, 0, RecordKind.ABSENT) != link(GENESIS, 1, RecordKind.ABSENT)


# -- signing --------------------------------------------------------------------------------------

def test_a_statement_signed_verifies_with_its_public_key_only(tmp_path):
    signer = load_signer(None, tmp_path / "ledger.key", create=True)
    assert (tmp_path / "ledger.key").stat().st_mode & 0o777 == 0o600
    said = statement("t", 0, 0, 0, 9, GENESIS, b"\x02" * 32, (8, 1, 0, 0, 1), WHEN, WHEN + timedelta(hours=1))
    sig = signer.sign(said)
    mine = Verifier.load(str(tmp_path / "ledger.pub"))
    assert mine.key_id == signer.key_id and mine.verify(said, sig)
    assert not mine.verify(said.replace(b" 9 ", b" 10 "), sig)
    other = Signer(Ed25519PrivateKey.generate(), "another")
    assert not Verifier(other.public, "x").verify(said, sig)
    assert load_signer(None, tmp_path / "ledger.key").key_id == signer.key_id  # read back, not made again
    assert Signer.from_pem(signer.pem, "pem").key_id == signer.key_id


def test_a_bad_key_is_refused_with_where_it_came_from(tmp_path):
    with pytest.raises(ConfigError, match="PRIVAUDIT_LEDGER_KEY"):
        load_signer("not a key", None)
    with pytest.raises(ConfigError, match="no ledger signing key at"):
        load_signer(None, tmp_path / "missing.key")
    with pytest.raises(ConfigError, match="public key"):
        Verifier.load("abcd")


# -- check ---------------------------------------------------------------------------------------

def test_check_applies_pa016_within_its_input():
    policy = load_policy()
    original = access(event_id=ID, occurred_at=WHEN)
    lines = [original.model_dump_json(), original.model_dump_json(),
             access(event_id=ID, occurred_at=WHEN, purpose="MARKETING").model_dump_json()]
    results = list(check_lines(Checker(policy), lines))
    assert results[1].repeat_of == 1 and results[1].violations == []
    assert [v.rule for v in results[2].violations] == ["PA-016"] and "line 1" in results[2].violations[0].message
