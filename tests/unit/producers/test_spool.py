"""The on-disk spool and the pseudonymiser (the emitter's parts that need no broker)."""

from __future__ import annotations

import os

import pytest

from privaudit.producers import Spool, SpoolBusy, SpoolFull
from privaudit.producers import spool as spool_module


def test_records_come_back_in_order_and_survive_a_restart(tmp_path):
    spool = Spool(tmp_path)
    for i in range(10):
        spool.append("t", f"k{i}".encode() if i % 2 else None, f"v{i}".encode())
    first = spool.pending(4)
    assert [r.value for r in first] == [b"v0", b"v1", b"v2", b"v3"] and first[0].key is None and first[1].key == b"k1"
    spool.ack(first[-1].position)
    spool.close()

    again = Spool(tmp_path)  # the service restarted
    assert [r.value for r in again.pending(100)] == [f"v{i}".encode() for i in range(4, 10)]
    again.ack(again.pending(100)[-1].position)
    assert again.empty and again.pending() == []


def test_a_torn_last_record_is_dropped_and_the_rest_kept(tmp_path):
    spool = Spool(tmp_path)
    spool.append("t", b"k", b"whole")
    spool.append("t", b"k", b"torn")
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:-2])  # the writer died mid-append
    assert [r.value for r in Spool(tmp_path).pending()] == [b"whole"]


def test_bounded_and_loud_when_full(tmp_path):
    spool = Spool(tmp_path, max_bytes=200)
    spool.append("t", None, b"x" * 100)
    with pytest.raises(SpoolFull, match="is full"):
        spool.append("t", None, b"x" * 100)
    spool.ack(spool.pending()[-1].position)
    spool.append("t", None, b"x" * 100)  # room again once delivered


def test_segments_roll_over_and_delivered_ones_are_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 300)
    spool = Spool(tmp_path)
    for i in range(20):
        spool.append("t", None, b"%03d" % i + b"." * 50)
    assert len(list(tmp_path.glob("*.seg"))) > 3
    records = spool.pending(1000)
    assert [r.value[:3] for r in records] == [b"%03d" % i for i in range(20)]
    spool.ack(records[-1].position)
    assert len(list(tmp_path.glob("*.seg"))) == 1 and spool.empty


def test_many_records_are_appended_in_order_with_one_fsync_per_segment_or_not_at_all(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 1000)
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    spool = Spool(tmp_path, max_bytes=2500)
    spool.extend("t", [(b"k%d" % i, b"%03d" % i + b"." * 50) for i in range(30)])  # ~2,100 bytes
    assert len(synced) == 3  # three segments written, each synced once
    assert [r.value[:3] for r in spool.pending(100)] == [b"%03d" % i for i in range(30)]
    with pytest.raises(SpoolFull, match="more asked"):
        spool.extend("t", [(None, b"x" * 100) for _ in range(10)])
    assert len(spool.pending(100)) == 30  # all or nothing


def test_one_spool_per_directory(tmp_path):
    first = Spool(tmp_path)
    with pytest.raises(SpoolBusy, match="in use by another emitter"):
        Spool(tmp_path)
    first.close()
    Spool(tmp_path).close()  # free again once closed
