"""The five event types as pydantic models: validation at the edges (JSON in, SDK in, Avro in).

Field names are the contract's, identical in JSON and Avro. In JSON an event carries a ``type``
field (``access``, ``share``, ``transfer``, ``consent``, ``membership``); in Avro the record's name
says it. Models are strict (no "5" for 5, no "true" for true) and frozen.

What the models add to the Avro schema, because Avro cannot say it:
- ``event_id`` is a UUID in its canonical 8-4-4-4-12 text form;
- ``occurred_at`` carries a UTC offset; it is normalised to UTC and truncated to milliseconds,
  which is what Avro's ``timestamp-millis`` keeps, so JSON and Avro round trips agree;
- ``subject_id`` is pseudonymous: a value shaped like an e-mail address, a Korean resident
  registration number or a Korean mobile number is refused, so a raw identifier never enters;
- ``data_items`` has at least one item on processing events; ``record_count`` is >= 1;
- country codes are assigned ISO 3166-1 alpha-2 codes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from privaudit.errors import EventError

from .countries import is_country

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

_RAW_IDENTIFIER = re.compile(
    r"""^(?:
        [^@\s]+@[^@\s]+\.[^@\s]+          # e-mail address
      | \d{6}-?[1-8]\d{6}                 # resident registration number (주민등록번호)
      | (?:\+?82-?|0)1[016789]-?\d{3,4}-?\d{4}  # Korean mobile number
    )$""",
    re.VERBOSE,
)


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _uuid_text(value: str) -> str:
    """The canonical 8-4-4-4-12 text of a UUID (either case). A regular expression, not
    ``uuid.UUID``: the same set of strings at a fifth of the cost, on every event."""
    if _UUID.fullmatch(value) is None:
        raise ValueError(f"not a UUID in 8-4-4-4-12 form: {value!r}")
    return value


def _utc_millis(value: datetime) -> datetime:
    if value.tzinfo is UTC and not value.microsecond % 1000:
        return value  # as Avro's timestamp-millis decodes: already so (no two new datetimes per event)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _pseudonymous(value: str) -> str:
    if _RAW_IDENTIFIER.match(value):
        raise ValueError("looks like a raw identifier (e-mail, resident number or phone); send a pseudonym")
    return value


def _country(value: str) -> str:
    if not is_country(value):
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {value!r}")
    return value


NonEmpty = Annotated[str, Field(min_length=1)]
EventId = Annotated[str, AfterValidator(_uuid_text)]
Timestamp = Annotated[AwareDatetime, AfterValidator(_utc_millis)]
SubjectId = Annotated[str, Field(min_length=1), AfterValidator(_pseudonymous)]
Country = Annotated[str, AfterValidator(_country)]
Items = Annotated[list[NonEmpty], Field(min_length=1)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    event_id: EventId
    occurred_at: Timestamp
    service: NonEmpty
    subject_id: SubjectId
    policy_version: str | None = None


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
    purposes: list[NonEmpty] = []
    data_items: list[NonEmpty] = []


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


def parse_json(text: str | bytes) -> Event:
    """One event from its JSON form; :class:`EventError` with a one-line reason otherwise."""
    try:
        return EVENT_ADAPTER.validate_json(text)
    except ValidationError as exc:
        raise EventError(describe(exc)) from exc


def describe(exc: ValidationError) -> str:
    """One line for a pydantic error: ``data_items: List should have at least 1 item ...``."""
    parts = []
    for err in exc.errors(include_url=False):
        path = err["loc"]
        if path and path[0] in MODELS:  # the discriminated union puts the event type first
            path = path[1:]
        loc = format_loc(path)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            loc, msg = "type", f"must be one of {', '.join(MODELS)}"
        parts.append(f"{loc}: {msg}" if loc else msg)
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
