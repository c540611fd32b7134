"""The policy file format, as pydantic models mirroring the YAML.

A file holds one policy: an item vocabulary shared by all versions, and a list of versions, each
with the date it takes effect. Every declared element cites the sentence of the source document
it comes from (``source``). See ``policies/caresquare-imfine-doctor.yaml`` for a full example and
``docs/policy-format.md`` for the reference.

Structural checks (types, required fields, unknown keys) are pydantic's; the cross-references
(an item code must be in the vocabulary, a recipient's purpose must be declared, ...) are
checked by :func:`cross_check`, which yields ``(path, message)`` pairs in file order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from privaudit.schemas.countries import is_country
from privaudit.schemas.models import LegalBasis, MembershipChange

ItemCategory = Literal["GENERAL", "GENERATED", "SENSITIVE", "UNIQUE_IDENTIFIER", "PAYMENT_CARD"]
Code = Annotated[str, Field(min_length=1, pattern=r"^[A-Z][A-Z0-9_]*$")]
Quote = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _time(value: object) -> object:
    """A time as written in the file (ISO 8601 text; YAML's implicit timestamps are off) or as
    given in Python; a date alone is refused by :func:`cross_check`, with advice."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            example = "2020-01-01T00:00:00+09:00"
            raise ValueError(f"not a date and time (ISO 8601, e.g. {example}): {value!r}: {exc}") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)  # no offset: cross_check says what to add
    return value


class ItemDef(_Strict):
    """One entry of the vocabulary: every item code events may carry, declared or not."""

    code: Code
    category: ItemCategory
    name_ko: str
    name_en: str
    law: str | None = None  # e.g. "PIPA Art. 23" for sensitive items


class CollectedItem(_Strict):
    code: str
    required: bool = False
    source: Quote


class Purpose(_Strict):
    code: Code
    text_ko: str
    text_en: str
    items: list[str]
    source: Quote


class NotRetained(_Strict):
    """An item the company says it does not keep: it may only pass through to a declared receiver."""

    item: str
    source: Quote


class Recipient(_Strict):
    id: Code
    name_ko: str
    name_en: str
    countries: list[str] = Field(min_length=1)
    purposes: list[str] = Field(min_length=1)
    items: list[str] = Field(min_length=1)
    legal_basis: LegalBasis
    source: Quote


class Processor(_Strict):
    id: Code
    name_ko: str
    name_en: str
    tasks: list[str] = Field(min_length=1)
    items: list[str] = Field(min_length=1)
    countries: list[str] = Field(min_length=1)
    sub_processors: list[str] = []  # ids of other declared processors it may re-entrust to
    source: Quote


class Retention(_Strict):
    ends_with: list[MembershipChange] = Field(min_length=1)
    after_end_purposes: list[str] = []
    source: Quote


class BulkAccess(_Strict):
    max_distinct_subjects: int = Field(ge=1)
    window_minutes: int = Field(ge=1, le=24 * 60)
    source: Quote


class Version(_Strict):
    version: Annotated[str, Field(min_length=1)]
    effective_from: Annotated[datetime, BeforeValidator(_time)]
    note: str | None = None
    collected_items: list[CollectedItem]
    purposes: list[Purpose] = Field(min_length=1)
    not_retained: list[NotRetained] = []
    recipients: list[Recipient] = []
    processors: list[Processor] = []
    retention: Retention
    bulk_access: BulkAccess


class PolicyDocument(_Strict):
    policy_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    controller: str
    services: list[str] = []
    source_document: str
    note: str | None = None
    home_country: str = "KR"
    items: list[ItemDef] = Field(min_length=1)
    versions: list[Version] = Field(min_length=1)


def cross_check(doc: PolicyDocument) -> Iterator[tuple[str, str]]:
    """Every cross-reference error, as ``(field path, message)``, in file order."""
    if not is_country(doc.home_country):
        yield "home_country", f"not an ISO 3166-1 alpha-2 country code: {doc.home_country!r}"
    vocabulary: set[str] = set()
    for i, item in enumerate(doc.items):
        if item.code in vocabulary:
            yield f"items[{i}].code", f"duplicate item code {item.code!r}"
        vocabulary.add(item.code)

    labels: set[str] = set()
    previous: datetime | None = None  # the last well-formed effective_from
    for v_i, version in enumerate(doc.versions):
        at = f"versions[{v_i}]"
        if version.version in labels:
            yield f"{at}.version", f"duplicate version label {version.version!r}"
        labels.add(version.version)
        if version.effective_from.tzinfo is None:
            yield (
                f"{at}.effective_from",
                "give a time with a UTC offset, e.g. 2020-01-01T00:00:00+09:00",
            )
            previous = None
        else:
            if previous is not None and version.effective_from <= previous:
                yield f"{at}.effective_from", "versions must be listed in order of effective_from"
            previous = version.effective_from
        yield from _check_version(at, version, vocabulary)


def _check_version(at: str, v: Version, vocabulary: set[str]) -> Iterator[tuple[str, str]]:
    def items(path: str, codes: list[str]) -> Iterator[tuple[str, str]]:
        for k, code in enumerate(codes):
            if code not in vocabulary:
                yield f"{path}[{k}]", f"unknown item code {code!r}"

    def countries(path: str, codes: list[str]) -> Iterator[tuple[str, str]]:
        for k, code in enumerate(codes):
            if not is_country(code):
                yield f"{path}[{k}]", f"not an ISO 3166-1 alpha-2 country code: {code!r}"

    collected: set[str] = set()
    for k, item in enumerate(v.collected_items):
        if item.code not in vocabulary:
            yield f"{at}.collected_items[{k}].code", f"unknown item code {item.code!r}"
        collected.add(item.code)
    purposes: set[str] = set()
    for p_i, purpose in enumerate(v.purposes):
        path = f"{at}.purposes[{p_i}]"
        if purpose.code in purposes:
            yield f"{path}.code", f"duplicate purpose code {purpose.code!r}"
        purposes.add(purpose.code)
        for k, code in enumerate(purpose.items):
            if code not in vocabulary:
                yield f"{path}.items[{k}]", f"unknown item code {code!r}"
            elif code not in collected:
                yield f"{path}.items[{k}]", f"item {code!r} is not among collected_items"
    for k, entry in enumerate(v.not_retained):
        if entry.item not in vocabulary:
            yield f"{at}.not_retained[{k}].item", f"unknown item code {entry.item!r}"

    def known_purposes(path: str, codes: list[str]) -> Iterator[tuple[str, str]]:
        for k, code in enumerate(codes):
            if code not in purposes:
                yield f"{path}[{k}]", f"purpose {code!r} is not declared in this version"

    seen: set[str] = set()
    for r_i, rec in enumerate(v.recipients):
        path = f"{at}.recipients[{r_i}]"
        if rec.id in seen:
            yield f"{path}.id", f"duplicate recipient id {rec.id!r}"
        seen.add(rec.id)
        yield from countries(f"{path}.countries", rec.countries)
        yield from known_purposes(f"{path}.purposes", rec.purposes)
        yield from items(f"{path}.items", rec.items)
    processor_ids = [p.id for p in v.processors]
    seen = set()
    for p_i, proc in enumerate(v.processors):
        path = f"{at}.processors[{p_i}]"
        if proc.id in seen:
            yield f"{path}.id", f"duplicate processor id {proc.id!r}"
        seen.add(proc.id)
        yield from countries(f"{path}.countries", proc.countries)
        yield from items(f"{path}.items", proc.items)
        for k, sub in enumerate(proc.sub_processors):
            if sub == proc.id:
                yield f"{path}.sub_processors[{k}]", "a processor cannot be its own sub-processor"
            elif sub not in processor_ids:
                yield f"{path}.sub_processors[{k}]", f"sub-processor {sub!r} is not a declared processor"
    yield from known_purposes(f"{at}.retention.after_end_purposes", v.retention.after_end_purposes)
