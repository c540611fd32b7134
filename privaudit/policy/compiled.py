"""The policy compiled for the checker: frozensets and dicts, built once before the first event.

The per-event path only does lookups: ``purpose in v.purposes``, ``v.purpose_items[p]``,
``v.recipients.get(id)``. Nothing here parses, reads files or looks at a clock.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from .document import PolicyDocument, Version

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMPTY: frozenset[str] = frozenset()


def to_millis(at: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (what Avro timestamp-millis holds)."""
    return (at - EPOCH) // _MS


_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - EPOCH


def from_millis(ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds (the inverse of :func:`to_millis`)."""
    return EPOCH + ms * _MS


@dataclass(frozen=True, slots=True)
class RecipientDecl:
    id: str
    purposes: frozenset[str]
    items: frozenset[str]
    countries: frozenset[str]
    legal_basis: str


@dataclass(frozen=True, slots=True)
class ProcessorDecl:
    id: str
    tasks: frozenset[str]
    items: frozenset[str]
    countries: frozenset[str]
    sub_processors: frozenset[str]


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One version, as the rules read it."""

    label: str
    effective_from: datetime
    effective_ms: int
    home_country: str
    purposes: frozenset[str]
    purpose_items: Mapping[str, frozenset[str]]
    purpose_text: Mapping[str, str]
    recipients: Mapping[str, RecipientDecl]
    processors: Mapping[str, ProcessorDecl]
    not_retained: frozenset[str]
    sensitive: frozenset[str]
    unique_ids: frozenset[str]
    retention_ends: frozenset[str]
    after_end_purposes: frozenset[str]
    bulk_threshold: int
    bulk_window_ms: int
    #: not_retained | sensitive | unique_ids: one isdisjoint() call clears most events.
    special_items: frozenset[str] = field(default=_EMPTY)

    def items_for(self, purpose: str) -> frozenset[str]:
        return self.purpose_items.get(purpose, _EMPTY)


@dataclass(frozen=True)
class Policy:
    """A compiled policy: its versions in order of ``effective_from``."""

    policy_id: str
    document: PolicyDocument
    versions: tuple[PolicyVersion, ...]
    source: str = "<memory>"
    _starts: tuple[int, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(v.effective_ms for v in self.versions))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its document, compiled again on arrival (consumer processes get it so;
        the compiled form holds read-only mappings, which do not pickle)."""
        return compile_policy, (self.document, self.source)

    def version_at(self, ms: int) -> PolicyVersion | None:
        """The version in force at ``ms`` (epoch milliseconds), or None before the first."""
        if ms >= self._starts[-1]:
            return self.versions[-1]
        i = bisect_right(self._starts, ms)
        return self.versions[i - 1] if i else None

    @property
    def max_window_ms(self) -> int:
        return max(v.bulk_window_ms for v in self.versions)


def compile_policy(doc: PolicyDocument, source: str = "<memory>") -> Policy:
    """Compile a cross-checked document (see :func:`privaudit.policy.load_policy`)."""
    categories = {item.code: item.category for item in doc.items}
    sensitive = frozenset(c for c, cat in categories.items() if cat == "SENSITIVE")
    unique_ids = frozenset(c for c, cat in categories.items() if cat == "UNIQUE_IDENTIFIER")
    versions = tuple(_compile_version(v, doc.home_country, sensitive, unique_ids) for v in doc.versions)
    return Policy(doc.policy_id, doc, versions, source)


def _compile_version(
    v: Version, home: str, sensitive: frozenset[str], unique_ids: frozenset[str]
) -> PolicyVersion:
    assert isinstance(v.effective_from, datetime)  # cross_check refused anything else
    not_retained = frozenset(n.item for n in v.not_retained)
    return PolicyVersion(
        label=v.version,
        effective_from=v.effective_from,
        effective_ms=to_millis(v.effective_from),
        home_country=home,
        purposes=frozenset(p.code for p in v.purposes),
        purpose_items=MappingProxyType({p.code: frozenset(p.items) for p in v.purposes}),
        purpose_text=MappingProxyType({p.code: p.text_ko for p in v.purposes}),
        recipients=MappingProxyType(
            {
                r.id: RecipientDecl(
                    r.id, frozenset(r.purposes), frozenset(r.items), frozenset(r.countries), r.legal_basis
                )
                for r in v.recipients
            }
        ),
        processors=MappingProxyType(
            {
                p.id: ProcessorDecl(
                    p.id,
                    frozenset(p.tasks),
                    frozenset(p.items),
                    frozenset(p.countries),
                    frozenset(p.sub_processors),
                )
                for p in v.processors
            }
        ),
        not_retained=not_retained,
        sensitive=sensitive,
        unique_ids=unique_ids,
        retention_ends=frozenset(v.retention.ends_with),
        after_end_purposes=frozenset(v.retention.after_end_purposes),
        bulk_threshold=v.bulk_access.max_distinct_subjects,
        bulk_window_ms=v.bulk_access.window_minutes * 60_000,
        special_items=not_retained | sensitive | unique_ids,
    )
