"""The schema set: working schemas, released versions, fingerprints and Confluent ids.

Layout under one directory (the shipped one is this package's folder)::

    avro/<type>.avsc              the working schemas (what producers write today)
    released/<N>/<type>.avsc      released versions, kept forever so old bytes stay readable
    confluent-ids.json            {"<id>": "<type>@<N>" or "<type>@working"}: ids for the
                                  Confluent wire format when no registry assigns them (a
                                  deployment whose registry assigned others gives its own
                                  table: ``SchemaSet(confluent_ids=FILE)``, ``--confluent-ids``)

Every schema is identified by the CRC-64-AVRO fingerprint of its Parsing Canonical Form, as the
Avro single-object encoding requires; identical versions share one fingerprint.

Implementations disagree on the canonical form of a primitive carrying a logicalType: the spec
([PRIMITIVES]), Java's SchemaNormalization and fastavro give ``"long"``; Apache Avro's Python
library (1.12) and goavro (issue #174) keep ``{"type":"long"}``. We write the spec's fingerprint
and, when the other one differs, accept it too on read, so bytes framed by those libraries decode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import avro.schema
from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from privaudit.errors import SchemaError

#: Event types in the contract's order; one ``<type>.avsc`` each.
EVENT_TYPES: tuple[str, ...] = ("access", "share", "transfer", "consent", "membership")
WORKING = "working"


@dataclass(frozen=True)
class WriterSchema:
    """One schema version of one event type, ready for fastavro."""

    event_type: str
    version: str  # a released label such as "1", or "working"
    raw: dict[str, Any]  # the .avsc as JSON
    parsed: Any  # fastavro's parsed form
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO, as written after C3 01
    accepted: tuple[bytes, ...] = ()  # also read: fingerprints other implementations compute

    @property
    def label(self) -> str:
        return f"{self.event_type}@{self.version}"


def _load(path: Path, event_type: str, version: str) -> WriterSchema:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parsed = parse_schema(raw)
        canonical = to_parsing_canonical_form(raw)
    except FileNotFoundError:
        raise SchemaError(f"{path}: missing schema for event type {event_type!r}") from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise SchemaError(f"{path}: not a valid Avro schema: {exc}") from exc
    except Exception as exc:  # fastavro's SchemaParseException and UnknownType are not ValueErrors
        raise SchemaError(f"{path}: not a valid Avro schema: {exc}") from exc
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    variant = bytes(avro.schema.parse(json.dumps(raw)).fingerprint("CRC-64-AVRO"))
    return WriterSchema(event_type, version, raw, parsed, fp, (variant,) if variant != fp else ())


class SchemaSet:
    """All schema versions under one directory, indexed for decoding."""

    def __init__(self, root: Path | None = None, *, confluent_ids: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else Path(str(resources.files(__package__)))
        self.working: dict[str, WriterSchema] = {
            t: _load(self.root / "avro" / f"{t}.avsc", t, WORKING) for t in EVENT_TYPES
        }
        self.released: dict[str, list[WriterSchema]] = {t: [] for t in EVENT_TYPES}
        released_dir = self.root / "released"
        labels = sorted(
            (p.name for p in released_dir.iterdir() if p.is_dir()) if released_dir.is_dir() else [],
            key=_version_key,
        )
        for label in labels:
            for t in EVENT_TYPES:
                path = released_dir / label / f"{t}.avsc"
                if path.exists():
                    self.released[t].append(_load(path, t, label))
        self.by_fingerprint: dict[bytes, WriterSchema] = {}
        for t in EVENT_TYPES:  # working last, so a fingerprint shared with a release says "working"
            for schema in [*self.released[t], self.working[t]]:
                for fp in (schema.fingerprint, *schema.accepted):
                    other = self.by_fingerprint.get(fp)
                    if other is not None and other.event_type != t:
                        raise SchemaError(f"{schema.label} and {other.label} have the same fingerprint")
                    self.by_fingerprint[fp] = schema
        if confluent_ids is not None and not Path(confluent_ids).is_file():
            raise SchemaError(f"{confluent_ids}: no such Confluent id table")
        self.by_confluent_id = self._confluent_ids(Path(confluent_ids or self.root / "confluent-ids.json"))

    def latest_released(self, event_type: str) -> WriterSchema | None:
        versions = self.released[event_type]
        return versions[-1] if versions else None

    def _confluent_ids(self, path: Path) -> dict[int, WriterSchema]:
        if not path.exists():
            return {}
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
            out = {}
            for key, label in table.items():
                event_type, _, version = label.partition("@")
                try:
                    out[int(key)] = self._find(event_type, version)
                except (ValueError, AttributeError) as exc:
                    raise ValueError(f"id {key!r}: {exc}") from exc
            return out
        except (ValueError, AttributeError) as exc:
            raise SchemaError(f"{path}: {exc}") from exc

    def _find(self, event_type: str, version: str) -> WriterSchema:
        if event_type in self.working and version == WORKING:
            return self.working[event_type]
        for schema in self.released.get(event_type, []):
            if schema.version == version:
                return schema
        raise ValueError(f"no schema {event_type}@{version}")


def _version_key(label: str) -> tuple[int, str]:
    return (int(label), "") if label.isdigit() else (1 << 30, label)
