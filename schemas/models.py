"""The five event types as pydantic models: validation at the edges (JSON in, SDK in, Avro in).

Field names are the contract's, identical in JSON and Avro. In JSON an event carries a ``type``
field (``access``, ``share``, ``transfer``, ``consent``, ``membership``); in Avro the record's name
says it. Models are strict (no "5" for 5, no "true" for true) and frozen.

What the models add to the Avro schema, because Avro cannot say it:
- ``event_id`` is a UUID in its canonical 8-4-4-4-12 text form;
- ``occurred_at`` carries a UTC offset; it is normalised to UTC and truncated to milliseconds,
  which is what Avro's ``timestamp-millis`` keeps, so JSON and Avro round trips agree;
- ``subject_id`` is pseudonymous: a value shaped like an e-mail address, a Korean resident
  registration number or a Korean mobile number, in any of their usual forms, is refused, so a raw
  identifier never enters (:mod:`.identifiers`);
- ``data_items`` has at least one item on processing events, and no list more than ``MAX_ITEMS``;
  ``record_count`` is >= 1;
- country codes are assigned ISO 3166-1 alpha-2 codes.

A resident registration number found in a free-text field (a reason, an actor's id ...) is masked
by :func:`mask_event` before the event is stored or published, and the event remembers which fields
it masked (:attr:`masked_fields`): the checker reports them as PA-015. The codec, ``parse_json`` and
the emitter call it; a model built directly is not masked.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from privaudit.errors import EventError, excerpt

from .countries import is_country
from .identifiers import mask_rrn, masked_already, may_hold_rrn, raw_kind

ActorType = Literal["STAFF", "SYSTEM", "PROCESSOR"]
Action = Literal["COLLECT", "VIEW", "UPDATE", "DELETE", "DOWNLOAD", "EXPORT", "PRINT", "USE"]
LegalBasis = Literal["CONSENT", "CONTRACT", "STATUTE", "EMERGENCY"]
ConsentScope = Literal["PURPOSE", "THIRD_PARTY", "SENSITIVE", "CROSS_BORDER"]
MembershipChange = Literal["SIGNUP", "WITHDRAWAL", "CONTRACT_END"]

#: Avro enum name -> the symbols the models accept; a test keeps the two in step.
ENUMS: dict[str, tuple[str, ...]] = {
    "ActorType": get_args(ActorType),
    "Action": get_args(Action),
    "LegalBasis": get_args(LegalBasis),
    "ConsentScope": get_args(ConsentScope),
    "MembershipChange": get_args(MembershipChange),
}

#: The most items a list field (``data_items``, ``purposes``) may hold: far above any real event,
#: and a bound on what one record can make the consumer build.
MAX_ITEMS = 256


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _uuid_text(value: str) -> str:
    """The canonical 8-4-4-4-12 text of a UUID (either case). A regular expression, not
    ``uuid.UUID``: the same set of strings at a fifth of the cost, on every event."""
    if _UUID.fullmatch(value) is None:
        raise ValueError(f"not a UUID in 8-4-4-4-12 form: {excerpt(value)}")
    return value


def _utc_millis(value: datetime) -> datetime:
    if value.tzinfo is UTC and not value.microsecond % 1000:
        return value  # as Avro's timestamp-millis decodes: already so (no two new datetimes per event)
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is past the last representable UTC time
        raise ValueError(f"out of range: {value.isoformat()} is not a time in UTC") from None
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


#: What a phone number or resident registration number is written with (digits, separators, a
#: leading +, parentheses; ASCII whitespace as ``\s`` and ``strip`` take it).
_NUMBER_CHARACTERS = str.maketrans("", "", "0123456789+-.() \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")


def _pseudonymous(value: str) -> str:
    if value.isascii() and "@" not in value and ":" not in value and value.translate(_NUMBER_CHARACTERS):
        # no e-mail address without an @, no prefix (tel:) without a colon, and a character no
        # number is written with: none of the three (exact: NFKC leaves ASCII as it is)
        return value
    kind = raw_kind(value)
    if kind is not None:
        article = "an" if kind[0] in "aeiou" else "a"
        raise ValueError(f"looks like a raw identifier ({article} {kind}); send a pseudonym")
    return value


def _country(value: str) -> str:
    if not is_country(value):
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {excerpt(value)}")
    return value


NonEmpty = Annotated[str, Field(min_length=1)]
EventId = Annotated[str, AfterValidator(_uuid_text)]
Timestamp = Annotated[AwareDatetime, AfterValidator(_utc_millis)]
SubjectId = Annotated[str, Field(min_length=1), AfterValidator(_pseudonymous)]
Country = Annotated[str, AfterValidator(_country)]
Items = Annotated[list[NonEmpty], Field(min_length=1, max_length=MAX_ITEMS)]
Codes = Annotated[list[NonEmpty], Field(max_length=MAX_ITEMS)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    event_id: EventId
    occurred_at: Timestamp
    service: NonEmpty
    subject_id: SubjectId
    policy_version: str | None = None
    #: The fields in which :func:`mask_event` masked a resident registration number: set on the
    #: masked copy only (a class attribute otherwise, read at the cost of any attribute; a pydantic
    #: private attribute cost ~5 us an event to make and read, docs/benchmarks.md).
    masked_fields: ClassVar[tuple[str, ...]] = ()


class AccessEvent(_Event):
    """열람·수집·이용: the company or a processor touches personal data."""

    type: Literal["access"] = "access"
    actor_id: str | None = None
    actor_type: ActorType
    processor_id: str | None = None
    action: Action
    purpose: NonEmpty
    data_items: Items
    source_ip: str | None = None
    record_count: Annotated[int, Field(ge=1, le=2**31 - 1)] = 1
    reason: str | None = None


class ShareEvent(_Event):
    """제3자 제공: personal data provided to a third party."""

    type: Literal["share"] = "share"
    actor_id: str | None = None
    recipient_id: NonEmpty
    recipient_country: Country
    purpose: NonEmpty
    data_items: Items
    legal_basis: LegalBasis
    consent_id: str | None = None


class TransferEvent(_Event):
    """위탁: personal data handed to a processor, or passed on to a sub-processor."""

    type: Literal["transfer"] = "transfer"
    actor_id: str | None = None
    processor_id: NonEmpty
    from_processor_id: str | None = None
    task: NonEmpty
    purpose: NonEmpty
    data_items: Items
    destination_country: Country


class ConsentEvent(_Event):
    """The subject grants (``granted`` true) or withdraws (false) a consent."""

    type: Literal["consent"] = "consent"
    consent_id: NonEmpty
    scope: ConsentScope
    target: NonEmpty
    granted: bool
    purposes: Codes = []
    data_items: Codes = []


class MembershipEvent(_Event):
    """회원가입, 탈퇴, 이용계약 종료."""

    type: Literal["membership"] = "membership"
    change: MembershipChange


Event = Annotated[
    AccessEvent | ShareEvent | TransferEvent | ConsentEvent | MembershipEvent,
    Field(discriminator="type"),
]

#: One of the five model classes.
EventModel = type[AccessEvent] | type[ShareEvent] | type[TransferEvent] | type[ConsentEvent] | type[MembershipEvent]

#: event type name -> model class, in the contract's order.
MODELS: dict[str, EventModel] = {
    "access": AccessEvent,
    "share": ShareEvent,
    "transfer": TransferEvent,
    "consent": ConsentEvent,
    "membership": MembershipEvent,
}

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_json(text: str | bytes, *, not_after_ms: int | None = None) -> Event:
    """One event from its JSON form (a resident registration number in free text masked);
    :class:`EventError` with a one-line reason otherwise, also when it happened after
    ``not_after_ms`` (see :func:`refuse_future`)."""
    try:
        event = EVENT_ADAPTER.validate_json(text)
    except ValidationError as exc:
        raise EventError(describe(exc)) from exc
    if not_after_ms is not None:
        refuse_future(event, not_after_ms)
    return mask_event(event) if may_hold_rrn(text) else event


def refuse_future(event: Event, not_after_ms: int) -> None:
    """:class:`EventError` when ``event`` happened after ``not_after_ms`` (epoch milliseconds): an
    event from the future is a wrong clock, or a wrong field, and would be kept past any retention."""
    if (event.occurred_at - _EPOCH) // _MS > not_after_ms:
        limit = (_EPOCH + not_after_ms * _MS).isoformat(timespec="seconds")
        raise EventError(f"{event.type}: occurred_at: {event.occurred_at.isoformat(timespec='seconds')} is later "
                         f"than now plus the clock-skew allowance ({limit})")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - _EPOCH


#: Fields that are never free text: validated as a UUID, a time, a pseudonym, an enum or a country.
_NOT_FREE_TEXT = frozenset({"event_id", "occurred_at", "subject_id", "type", "actor_type", "action", "legal_basis",
                            "scope", "change", "recipient_country", "destination_country", "granted",
                            "record_count"})


def mask_event(event: Event) -> Event:
    """``event`` with every resident registration number in its free-text fields masked, and
    those fields named in its :attr:`~_Event.masked_fields`; the same object when there is none."""
    update: dict[str, object] = {}
    named: set[str] = set()  # masked here, or by the emitter before it published the event
    for name, value in event.__dict__.items():
        if name in _NOT_FREE_TEXT or value is None:
            continue
        if isinstance(value, str):
            masked, found = mask_rrn(value)
            if found:
                update[name] = masked
            if found or masked_already(value):
                named.add(name)
        elif isinstance(value, list):
            items = [mask_rrn(v) for v in value]
            if any(found for _, found in items):
                update[name] = [masked for masked, _ in items]
            if name in update or any(masked_already(v) for v in value):
                named.add(name)
    if not named:
        return event
    copy = event.model_copy(update=update) if update else event.model_copy()
    object.__setattr__(copy, "masked_fields", tuple(sorted(named)))  # beside the fields: never dumped
    return copy


#: At most this many of pydantic's errors are described; the rest are counted.
_DESCRIBED = 5


def describe(exc: ValidationError) -> str:
    """One line for a pydantic error: ``data_items: List should have at least 1 item ...``; the
    first few errors, each bounded, then how many more there were."""
    parts = []
    errors = exc.errors(include_url=False)
    for err in errors[:_DESCRIBED]:
        path = err["loc"]
        if path and path[0] in MODELS:  # the discriminated union puts the event type first
            path = path[1:]
        loc = format_loc(path)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            loc, msg = "type", f"must be one of {', '.join(MODELS)}"
        parts.append(excerpt(f"{loc}: {msg}" if loc else msg, 300, quoted=False))
    if len(errors) > _DESCRIBED:
        parts.append(f"and {len(errors) - _DESCRIBED:,} more error(s)")
    return "; ".join(parts)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """``('versions', 0, 'purposes', 2)`` -> ``versions[0].purposes[2]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def stored_content(e: Event) -> tuple[Any, ...]:
    """The event's content as ``events`` stores it, in ``privaudit.canonical.CONTENT_FIELDS`` order
    (the id lower-case, ``country`` the recipient's or destination's, ``record_count`` 1 when not
    given): what :func:`privaudit.canonical.content_hash` takes."""
    get = e.__dict__.get
    return (
        e.event_id.lower(), e.type, e.occurred_at, e.service, e.subject_id, e.policy_version, get("actor_id"),
        get("actor_type"), get("processor_id"), get("from_processor_id"), get("recipient_id"),
        get("recipient_country") or get("destination_country"), get("action"), get("purpose"), get("task"),
        get("legal_basis"), get("consent_id"), get("data_items") or [], get("source_ip"), get("record_count") or 1,
        get("reason"), get("scope"), get("target"), get("granted"), get("purposes") or [], get("change"),
    )
