"""Schema evolution: can a reader with one schema read what another wrote? (Used by
:meth:`~.registry.SchemaSet.check_backward`, ``privaudit schemas check``, and to accept a schema
registry's schemas.)

BACKWARD, as a schema registry means it: a consumer using the *working* schema as its reader
can read every datum written with the *last released* schema. (So a field may be added
only with a default, an enum symbol may be added but not removed, and a type may change only by
Avro's promotions.) The rules are Apache Avro's own
``avro.compatibility`` checker, the one schema registries use, not ours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType


@dataclass(frozen=True)
class CompatResult:
    event_type: str
    released: str | None  # label of the last released version, None when never released
    compatible: bool
    problems: tuple[str, ...]  # "location: message", empty when compatible

    def as_dict(self) -> dict[str, object]:
        return {
            "event_type": self.event_type,
            "released": self.released,
            "compatible": self.compatible,
            "problems": list(self.problems),
        }


def can_read(reader: dict[str, Any], writer: dict[str, Any]) -> tuple[str, ...]:
    """What stops a consumer with schema ``reader`` from reading every datum written with
    ``writer`` (both as JSON): empty when it can."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro's __init__ has no hints
    result = checker.get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer)))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return ()
    # avro reports kinds, locations and details as separate, unpaired sets
    kinds = ", ".join(sorted({i.value for i in result.incompatibilities}))
    where = ", ".join(sorted(loc for loc in result.locations if loc != "/"))
    details = "; ".join(sorted(result.messages))
    return (f"{kinds} at {where or '/'} ({details})",)
