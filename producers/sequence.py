"""An emitter's identity and the sequence number of each record it sends (docs/evidence.md).

Each :class:`~privaudit.producers.emitter.AuditEmitter` stamps its records with the Kafka headers
``privaudit.emitter`` (a UUID made once and kept in its spool directory, so one spool is one
emitter across restarts) and ``privaudit.seq`` (1, 2, 3, ... in call order). The consumer records
the numbers it sees per emitter; a number that never arrives while the emitter's later records do
is an event the service emitted and Kafka never got (``privaudit verify`` reports it).

The next number is written to the spool directory at every call (``pwrite`` of 8 bytes, no fsync:
about a microsecond), so it survives the process; a machine that loses its page cache can reuse
numbers, which reads as repeats, never as a gap.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

from privaudit.schemas.headers import HEADER_EMITTER, HEADER_SEQ


class Sequence:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        ident = directory / "emitter-id"
        if not ident.exists():
            tmp = directory / "emitter-id.tmp"
            tmp.write_text(str(uuid.uuid4()))
            os.replace(tmp, ident)
        self.emitter = ident.read_text().strip()
        self._emitter_bytes = self.emitter.encode()
        self._fd = os.open(directory / "emitter-seq", os.O_RDWR | os.O_CREAT, 0o600)
        stored = os.pread(self._fd, 8, 0)
        self._next = int.from_bytes(stored, "big") if len(stored) == 8 else 1
        self._lock = threading.Lock()

    def take(self) -> tuple[tuple[str, bytes], ...]:
        """The next number, as the record's headers; the one after it is on disk before this returns."""
        with self._lock:
            seq = self._next
            self._next = seq + 1
            os.pwrite(self._fd, self._next.to_bytes(8, "big"), 0)
        return (HEADER_EMITTER, self._emitter_bytes), (HEADER_SEQ, str(seq).encode())

    @property
    def next(self) -> int:
        return self._next

    def close(self) -> None:
        os.close(self._fd)
