"""The schema set: working schemas, released versions, fingerprints and Confluent ids.

Layout under one directory (the shipped one is this package's folder)::

    avro/<type>.avsc              the working schemas (what producers write today)
    released/<N>/<type>.avsc      released versions, kept forever so old bytes stay readable
    confluent-ids.json            {"<id>": "<type>@<N>" or "<type>@working"}: ids for the
                                  Confluent wire format when no registry assigns them (a
                                  deployment whose registry assigned others gives its own
                                  table: ``SchemaSet(confluent_ids=FILE)``, ``--confluent-ids``,
                                  or the registry itself: ``SchemaSet(registry=...)``,
                                  ``--schema-registry URL``; see :meth:`SchemaSet.confluent_writer`)

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
from typing import Any, Protocol

import avro.schema
from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from privaudit.errors import DecodeError, SchemaError

from .compat import CompatResult, can_read

#: Event types in the contract's order; one ``<type>.avsc`` each.
EVENT_TYPES: tuple[str, ...] = ("access", "share", "transfer", "consent", "membership")
WORKING = "working"


class SchemaLookup(Protocol):
    """A schema registry's answer for a schema id, or None when it has none (its failures raised as
    :class:`~privaudit.errors.RegistryUnavailable` or :class:`~privaudit.errors.RegistryError`): the
    HTTP client :class:`~.schema_registry.SchemaRegistry`, or a stand-in."""

    def schema(self, schema_id: int) -> dict[str, Any] | None: ...


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

    def __init__(self, root: Path | None = None, *, confluent_ids: str | Path | None = None,
                 registry: SchemaLookup | None = None) -> None:
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
        # With a registry, the shipped table's ids are not used: the registry's may mean others.
        table = confluent_ids or (None if registry is not None else self.root / "confluent-ids.json")
        self.by_confluent_id = self._confluent_ids(Path(table)) if table is not None else {}
        self.registry = registry
        self._registered: dict[int, WriterSchema | str] = {}  # the registry's ids, as looked up
        self._by_name = {name: t for t, s in self.working.items() if (name := _full_name(s.raw)) is not None}

    def confluent_writer(self, schema_id: int) -> WriterSchema:
        """The writer schema of a Confluent-framed record: from the id table, else (with a
        registry) from the registry's schema, looked up once per id:

        - a schema with the fingerprint of a contract version is that version;
        - another Avro record schema with the full name of one of the contract's types (fields
          in another order, a field more or less, docs: what another implementation may have
          registered) is read with Avro's schema resolution into the working schema, if Avro's
          own compatibility check says it can be;
        - anything else (no such id, not Avro, another record, incompatible) is a
          :class:`DecodeError` with the reason, so the record goes to the dead-letter topic.

        The registry's :class:`RegistryUnavailable` and :class:`RegistryError` are raised as they
        are: a registry that is down is waited for, never a reason to dead-letter a record."""
        writer = self.by_confluent_id.get(schema_id)
        if writer is not None:
            return writer
        if self.registry is None:
            raise DecodeError(f"unknown Confluent schema id {schema_id}")
        found = self._registered.get(schema_id)
        if found is None:  # ids are never reused by a registry: an answer holds for good
            found = self._registered[schema_id] = self._registered_writer(schema_id, self.registry)
        if isinstance(found, str):
            raise DecodeError(found)
        return found

    def _registered_writer(self, schema_id: int, registry: SchemaLookup) -> WriterSchema | str:
        """The writer schema of a registry id, or why there is none."""
        where = f"Confluent schema id {schema_id}"
        answer = registry.schema(schema_id)
        if answer is None:
            return f"unknown {where} (the schema registry has none)"
        kind = answer.get("schemaType") or "AVRO"
        if kind != "AVRO":
            return f"{where} is a {kind} schema in the registry, not Avro"
        if answer.get("references"):
            return f"{where} refers to other schemas in the registry; the contract's schemas stand alone"
        try:
            raw = json.loads(answer["schema"])
            parsed = parse_schema(raw)
            fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO"))
        except Exception as exc:  # json's, fastavro's SchemaParseException, UnknownType ...
            return f"{where}: the registry's schema is not valid Avro ({type(exc).__name__}: {exc})"
        known = self.by_fingerprint.get(fp)
        if known is not None:
            return known
        name = _full_name(raw)
        event_type = self._by_name.get(name) if name else None
        if event_type is None:
            return (f"{where}: the registry's schema {name or '(not a record)'} is none of the contract's "
                    f"types ({', '.join(self._by_name)})")
        problems = can_read(self.working[event_type].raw, raw)
        if problems:
            return f"{where}: {name} as registered cannot be read as {event_type}: {'; '.join(problems)}"
        return WriterSchema(event_type, f"registry-{schema_id}", raw, parsed, fp)

    def check_backward(self) -> list[CompatResult]:
        """Whether each working schema reads all data written with the last released one (BACKWARD,
        as a schema registry means it), one result per event type in the contract's order."""
        results = []
        for event_type in EVENT_TYPES:
            released = self.latest_released(event_type)
            if released is None:
                results.append(CompatResult(event_type, None, True, ()))
                continue
            problems = can_read(self.working[event_type].raw, released.raw)
            results.append(CompatResult(event_type, released.version, not problems, problems))
        return results

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


def _full_name(raw: Any) -> str | None:
    """A record schema's full name (``namespace.Name``); None for any other schema."""
    if not isinstance(raw, dict) or raw.get("type") != "record" or not isinstance(raw.get("name"), str):
        return None
    name, namespace = raw["name"], raw.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _version_key(label: str) -> tuple[int, str]:
    return (int(label), "") if label.isdigit() else (1 << 30, label)
