"""A bounded, fsynced, ordered spool on local disk: where events wait while the broker is away.

Layout of the spool directory::

    00000001.seg, 00000002.seg, ...   append-only segments of records
    cursor                            "<segment> <byte offset>": where the next unsent record starts

A record is ``length (4 bytes) | crc32 (4) | topic length (2) | topic | key length (4, 0xFFFFFFFF
for none) | key | value``. Every append is flushed and fsynced before it returns, so an event the
service handed over survives a crash of the service. The cursor is replaced atomically (write,
fsync, rename) after the records before it were acknowledged by the broker, so a replay after a
crash may send a record twice (at-least-once: the consumer deduplicates by event id downstream),
never loses one. A torn last record (the service died mid-append) is detected by its length or CRC
and dropped; everything before it is kept.

Bounded: past ``max_bytes`` an append raises :class:`SpoolFull` at the call site: loud, not lossy.
One owner: the directory is locked (``flock`` on ``lock``) while a spool has it open, so two
emitters, or two processes, never replay the same records.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from privaudit.errors import PrivauditError

_HEAD = struct.Struct(">II")  # length of the body, crc32 of the body
_NO_KEY = 0xFFFFFFFF
_HAS_HEADERS = 0x8000  # in the topic's length: headers follow the key (written since the emitter's sequence)
Headers = tuple[tuple[str, bytes], ...]
SEGMENT_BYTES = 8 * 1024 * 1024


class SpoolFull(PrivauditError):
    """The spool reached its size bound; the event was not accepted."""


class SpoolBusy(PrivauditError):
    """Another spool (in this process or another) has the directory open."""


@dataclass(frozen=True, slots=True)
class Spooled:
    topic: str
    key: bytes | None
    value: bytes
    position: tuple[int, int]  # (segment, offset) just after this record
    headers: Headers = ()


def _encode(topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> bytes:
    t = topic.encode("utf-8")
    k = b"" if key is None else key
    flag = _HAS_HEADERS if headers else 0
    body = struct.pack(">H", len(t) | flag) + t + struct.pack(">I", _NO_KEY if key is None else len(k)) + k
    if headers:
        body += struct.pack(">B", len(headers))
        for name, data in headers:
            n = name.encode("utf-8")
            body += struct.pack(">H", len(n)) + n + struct.pack(">I", len(data)) + data
    body += value
    return _HEAD.pack(len(body), zlib.crc32(body)) + body


def _decode(body: bytes) -> tuple[str, bytes | None, bytes, Headers]:
    (tlen,) = struct.unpack_from(">H", body, 0)
    flag, tlen = tlen & _HAS_HEADERS, tlen & ~_HAS_HEADERS
    topic = body[2 : 2 + tlen].decode("utf-8")
    (klen,) = struct.unpack_from(">I", body, 2 + tlen)
    at = 6 + tlen
    key = None if klen == _NO_KEY else body[at : at + klen]
    at += 0 if key is None else klen
    headers: list[tuple[str, bytes]] = []
    if flag:
        (count,) = struct.unpack_from(">B", body, at)
        at += 1
        for _ in range(count):
            (nlen,) = struct.unpack_from(">H", body, at)
            name = body[at + 2 : at + 2 + nlen].decode("utf-8")
            at += 2 + nlen
            (dlen,) = struct.unpack_from(">I", body, at)
            headers.append((name, body[at + 4 : at + 4 + dlen]))
            at += 4 + dlen
    return topic, key, body[at:], tuple(headers)


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lockfile = open(self.dir / "lock", "a")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lockfile.close()
            raise SpoolBusy(f"spool {self.dir} is in use by another emitter") from None
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._cursor = self._read_cursor()
        segments = self._segments()
        self._write_seg = segments[-1] if segments else max(1, self._cursor[0])
        self._out = open(self._seg_path(self._write_seg), "ab")  # noqa: SIM115 - kept open, closed in close()
        self._size = sum(self._seg_path(s).stat().st_size for s in segments) - self._cursor[1]

    # -- writing --------------------------------------------------------------------------

    def append(self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> None:
        """Durably append one record (flushed and fsynced before returning)."""
        self.extend(topic, [(key, value, headers)])

    def extend(self, topic: str, records: Sequence[tuple[bytes | None, bytes] | tuple[bytes | None, bytes, Headers]]
               ) -> None:
        """Durably append records ``(key, value[, headers])`` in order, with one fsync (per segment
        written). Past the bound nothing is appended: :class:`SpoolFull`, loud rather than lossy."""
        chunks = [_encode(topic, *record) for record in records]
        size = sum(len(c) for c in chunks)
        with self._lock:
            if chunks and self._size + size > self.max_bytes:
                raise SpoolFull(f"spool {self.dir} is full ({self._size} of {self.max_bytes} bytes; "
                                f"{size} more asked)")
            for data in chunks:
                if self._out.tell() + len(data) > SEGMENT_BYTES and self._out.tell() > 0:
                    self._sync()
                    self._out.close()
                    self._write_seg += 1
                    self._out = open(self._seg_path(self._write_seg), "ab")  # noqa: SIM115
                self._out.write(data)
            if chunks:
                self._sync()
            self._size += size

    def _sync(self) -> None:
        self._out.flush()
        os.fsync(self._out.fileno())

    # -- reading --------------------------------------------------------------------------

    def pending(self, limit: int = 1000) -> list[Spooled]:
        """Up to ``limit`` unsent records, oldest first."""
        with self._lock:
            return list(self._iter(limit))

    def _iter(self, limit: int) -> Iterator[Spooled]:
        seg, offset = self._cursor
        count = 0
        for s in self._segments():
            if s < seg:
                continue
            with open(self._seg_path(s), "rb") as f:
                f.seek(offset if s == seg else 0)
                while count < limit:
                    head = f.read(_HEAD.size)
                    if len(head) < _HEAD.size:
                        break
                    length, crc = _HEAD.unpack(head)
                    body = f.read(length)
                    if len(body) < length or zlib.crc32(body) != crc:
                        break  # a torn record at the end: the writer died mid-append
                    topic, key, value, headers = _decode(body)
                    count += 1
                    yield Spooled(topic, key, value, (s, f.tell()), headers)
            if count >= limit:
                return

    def ack(self, position: tuple[int, int]) -> None:
        """Everything up to ``position`` was delivered: move the cursor, drop finished segments."""
        with self._lock:
            old = self._cursor
            self._write_cursor(position)
            self._size = max(0, self._size - self._span(old, position))
            for s in self._segments():
                if s < position[0]:
                    self._seg_path(s).unlink(missing_ok=True)

    def __len__(self) -> int:
        """Unsent bytes (0 when empty)."""
        return max(0, self._size)

    @property
    def empty(self) -> bool:
        return self._size <= 0

    def close(self) -> None:
        with self._lock:
            self._out.close()
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_UN)
            self._lockfile.close()

    # -- files ----------------------------------------------------------------------------

    def _seg_path(self, n: int) -> Path:
        return self.dir / f"{n:08d}.seg"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.seg"))

    def _span(self, a: tuple[int, int], b: tuple[int, int]) -> int:
        if a[0] == b[0]:
            return b[1] - a[1]
        total = self._seg_size(a[0]) - a[1]
        for s in range(a[0] + 1, b[0]):
            total += self._seg_size(s)
        return total + b[1]

    def _seg_size(self, n: int) -> int:
        path = self._seg_path(n)
        return path.stat().st_size if path.exists() else 0

    def _read_cursor(self) -> tuple[int, int]:
        try:
            seg, offset = (self.dir / "cursor").read_text().split()
            return int(seg), int(offset)
        except (FileNotFoundError, ValueError):
            segments = self._segments()
            return (segments[0] if segments else 1), 0

    def _write_cursor(self, position: tuple[int, int]) -> None:
        tmp = self.dir / "cursor.tmp"
        with open(tmp, "w") as f:
            f.write(f"{position[0]} {position[1]}")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / "cursor")
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._cursor = position
