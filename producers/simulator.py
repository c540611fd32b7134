"""Simulated services: the ImFine Doctor app, the homepage, customer support, payments and a
statistics batch job, emitting a realistic mix of events with a share of violations.

    for event in simulate(SimulationConfig(events=50_000, seed=7)):
        emitter.send_event(event)

Deterministic for a seed and start time. The default start is the first day of the previous month
(00:00 KST), so the same seed gives the same stream all month, and the rows stay inside the
stores' retention TTL (at least 730 days) whenever the demo runs; pass ``start`` to pin it. Events
come out with **strictly increasing** ``occurred_at`` (at least 1 ms apart), so any two events by
one actor are ordered by time alone: the pipeline's bulk-access stage (PA-012), which sees events
from several partitions, then reaches the same verdicts as ``privaudit check`` on the file (see
docs/pipeline.md).

Violations: with probability ``violation_rate`` an event is replaced by one breaking a rule, chosen
in turn over the catalogue. PA-006 needs a declared processor; with a policy that declares none (the
shipped one) it cannot occur and is skipped, and PA-007's re-entrustment also fires PA-005.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from privaudit.errors import ConfigError
from privaudit.policy import Policy, from_millis, to_millis
from privaudit.schemas.models import MODELS, Event

from .pseudonym import Pseudonymizer

KST = timezone(timedelta(hours=9))


def default_start(today: date | None = None) -> datetime:
    """00:00 KST on the first day of the month before ``today``."""
    today = today or datetime.now(KST).date()
    first = today.replace(day=1) - timedelta(days=1)
    return datetime(first.year, first.month, 1, tzinfo=KST)

SIM_KEY = b"privaudit-simulator-demo-key-not-a-secret"

STAFF = [f"cs-{n:02d}" for n in range(20)]
BACKENDS = [f"app-backend-{n:02d}" for n in range(24)]
MARKETERS = ["mkt-01", "mkt-02", "mkt-03"]


@dataclass(frozen=True)
class SimulationConfig:
    events: int = 50_000
    seed: int = 7
    violation_rate: float = 0.02
    start: datetime = field(default_factory=default_start)
    mean_gap_ms: int = 2000  # simulated time between events
    max_members: int | None = None  # stop signing up new members past this (a bounded population)
    # No event is dated after this: when the events would not fit between start and end at
    # mean_gap_ms, the gap shrinks so that they do (an event from the future breaks the contract).
    end: datetime = field(default_factory=lambda: datetime.now(UTC))


def member_phone(n: int) -> str:
    """The made-up mobile number of the ``n``-th simulated member (from 1): ``010-0000-0042``."""
    return f"010-{n // 10000:04d}-{n % 10000:04d}"


class _World:
    """Members and their state, so clean traffic stays clean."""

    def __init__(self, rng: random.Random, pseudonym: Callable[[str], str], max_members: int | None = None) -> None:
        self.rng = rng
        self.max_members = max_members
        self.pseudonym = pseudonym
        self.members: list[str] = []
        self.withdrawn: list[str] = []
        self.marketing: set[str] = set()
        self.next_member = 0

    def new_member(self) -> str:
        self.next_member += 1
        # a member is known to the services by a (made-up) mobile number: 010-0000-0042
        subject = self.pseudonym(member_phone(self.next_member))
        self.members.append(subject)
        return subject

    def member(self) -> str:
        return self.rng.choice(self.members) if self.members else self.new_member()

    def withdraw(self) -> str | None:
        if len(self.members) < 50:
            return None
        subject = self.members.pop(self.rng.randrange(len(self.members)))
        self.withdrawn.append(subject)
        self.marketing.discard(subject)
        return subject


def simulate(config: SimulationConfig, policy: Policy | None = None) -> Iterator[Event]:
    rng = random.Random(config.seed)
    world = _World(rng, Pseudonymizer(SIM_KEY), config.max_members)
    at = config.start.astimezone(UTC)
    declared_processors = sorted(policy.versions[-1].processors) if policy is not None else []
    violations = [v for v in _VIOLATIONS if v is not _pa006 or declared_processors]
    turn = 0
    burst_actor, burst_left = "", 0  # a staff member reading subjects in bulk (PA-012)

    end_ms = to_millis(config.end)
    span_ms = end_ms - to_millis(at)
    if config.events > span_ms:
        raise ConfigError(f"{config.events:,} events do not fit between {config.start.isoformat()} and "
                          f"{config.end.isoformat()} at least 1 ms apart: start earlier, or ask for fewer")
    mean_gap = min(float(config.mean_gap_ms), 0.9 * span_ms / max(1, config.events))
    ms = to_millis(at)

    for i in range(config.events):
        # never later than leaves the rest of the events a millisecond each before the end
        ms = min(ms + 1 + int(rng.expovariate(1 / mean_gap)) if mean_gap > 0 else ms + 1,
                 end_ms - (config.events - 1 - i))
        at = from_millis(ms)
        if burst_left:
            fields = _staff_access(world, actor_id=burst_actor, source_ip="10.20.1.99")
            burst_left -= 1
        elif rng.random() < config.violation_rate / 200 and len(world.members) > 200:
            # rare: one staff account reads 131 members in a few minutes (PA-012 once past 100)
            burst_actor, burst_left = f"cs-bulk-{turn % 7}", 130
            fields = _staff_access(world, actor_id=burst_actor, source_ip="10.20.1.99")
        elif rng.random() < config.violation_rate and world.members:
            make = violations[turn % len(violations)]
            turn += 1
            fields = make(world, declared_processors)
        else:
            fields = _clean(world)
        yield _event(rng, at, fields)


def _event(rng: random.Random, at: datetime, fields: dict[str, Any]) -> Event:
    kind = fields.pop("type")
    fields["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    fields["occurred_at"] = at
    fields.setdefault("policy_version", "1.0")
    return MODELS[kind].model_validate(fields)


def _ip(rng: random.Random) -> str:
    return f"10.20.{rng.randint(0, 15)}.{rng.randint(1, 254)}"


def _clean(w: _World) -> dict[str, Any]:
    rng = w.rng
    roll = rng.random()
    if roll < 0.04 and w.max_members is not None and len(w.members) >= w.max_members:
        roll = rng.uniform(0.05, 1.0)  # the population is full: no sign-up, the rest of the mix as usual
    if roll < 0.04 or not w.members:  # sign-up: membership, then the Device ID collected
        subject = w.new_member()
        if rng.random() < 0.5:
            return {"type": "membership", "subject_id": subject, "change": "SIGNUP", "service": "imfine-doctor-app"}
        return {"type": "access", "subject_id": subject, "actor_id": "signup-svc", "actor_type": "SYSTEM",
                "action": "COLLECT", "purpose": "MEMBER_MANAGEMENT", "data_items": ["DEVICE_ID"],
                "source_ip": "10.20.0.10", "service": "imfine-doctor-app"}
    if roll < 0.05:
        leaving = w.withdraw()
        if leaving is not None:
            change = rng.choice(["WITHDRAWAL", "WITHDRAWAL", "CONTRACT_END"])
            return {"type": "membership", "subject_id": leaving, "change": change, "service": "imfine-doctor-app"}
    if roll < 0.07:  # marketing consent given or withdrawn on the homepage
        subject = w.member()
        granted = subject not in w.marketing
        (w.marketing.add if granted else w.marketing.discard)(subject)
        return {"type": "consent", "subject_id": subject, "consent_id": f"mkt-{subject[-8:]}", "scope": "PURPOSE",
                "target": "MARKETING", "granted": granted, "purposes": ["MARKETING"] if granted else [],
                "data_items": ["DEVICE_ID", "USAGE_RECORD"] if granted else [], "service": "homepage"}
    if roll < 0.09 and w.marketing:  # marketing use, only for those who consented
        subject = rng.choice(sorted(w.marketing))
        return {"type": "access", "subject_id": subject, "actor_id": rng.choice(MARKETERS), "actor_type": "STAFF",
                "action": "USE", "purpose": "MARKETING", "data_items": ["DEVICE_ID"], "source_ip": _ip(rng),
                "service": "homepage"}
    if roll < 0.15:  # a payment: card data passes to the card issuer
        return {"type": "share", "subject_id": w.member(), "actor_id": "pay-gw", "recipient_id": "CARD_ISSUER",
                "recipient_country": "KR", "purpose": "PAYMENT", "data_items": ["CARD_INFO"], "legal_basis": "CONTRACT",
                "service": "payments"}
    if roll < 0.30:  # customer support reads member data
        action = "DOWNLOAD" if rng.random() < 0.05 else "VIEW"
        return {"type": "access", "subject_id": w.member(), "actor_id": rng.choice(STAFF), "actor_type": "STAFF",
                "action": action, "purpose": "CUSTOMER_SUPPORT", "data_items": ["DEVICE_ID", "USAGE_RECORD"],
                "source_ip": _ip(rng), "reason": "민원 처리" if action == "DOWNLOAD" else None,
                "service": "support-desk"}
    if roll < 0.31:  # the statistics batch job
        return {"type": "access", "subject_id": w.member(), "actor_id": "stats-batch", "actor_type": "SYSTEM",
                "action": "EXPORT", "purpose": "USAGE_STATISTICS", "data_items": ["USAGE_RECORD"],
                "source_ip": "10.20.0.30", "record_count": rng.randint(1, 100), "reason": "월간 이용 통계",
                "service": "stats-batch"}
    purpose = rng.choice(["SERVICE_PROVISION", "SERVICE_PROVISION", "USAGE_STATISTICS", "CUSTOMIZED_SERVICE"])
    return {"type": "access", "subject_id": w.member(), "actor_id": rng.choice(BACKENDS), "actor_type": "SYSTEM",
            "action": "USE", "purpose": purpose, "data_items": ["USAGE_RECORD"], "source_ip": "10.20.0.20",
            "service": "imfine-doctor-app"}


def _staff_access(w: _World, **over: Any) -> dict[str, Any]:
    fields = {"type": "access", "subject_id": w.member(), "actor_id": w.rng.choice(STAFF), "actor_type": "STAFF",
              "action": "VIEW", "purpose": "CUSTOMER_SUPPORT", "data_items": ["DEVICE_ID"], "source_ip": _ip(w.rng),
              "service": "support-desk"}
    fields.update(over)
    return fields


def _share(w: _World, **over: Any) -> dict[str, Any]:
    fields = {"type": "share", "subject_id": w.member(), "actor_id": "pay-gw", "recipient_id": "CARD_ISSUER",
              "recipient_country": "KR", "purpose": "PAYMENT", "data_items": ["CARD_INFO"], "legal_basis": "CONTRACT",
              "service": "payments"}
    fields.update(over)
    return fields


def _transfer(w: _World, **over: Any) -> dict[str, Any]:
    fields = {"type": "transfer", "subject_id": w.member(), "actor_id": w.rng.choice(STAFF),
              "processor_id": "CALL_CENTER",
              "task": "COUNSELLING", "purpose": "CUSTOMER_SUPPORT", "data_items": ["DEVICE_ID"],
              "destination_country": "KR", "service": "support-desk"}
    fields.update(over)
    return fields


def _pa006(w: _World, processors: list[str]) -> dict[str, Any]:
    return _transfer(w, processor_id=processors[0], task="UNDECLARED_TASK")


def _pa008(w: _World, processors: list[str]) -> dict[str, Any]:
    if not w.withdrawn:
        return _staff_access(w, purpose="MARKETING")  # nobody has left yet: PA-001 instead
    return _staff_access(w, subject_id=w.rng.choice(w.withdrawn))


_VIOLATIONS: list[Callable[[_World, list[str]], dict[str, Any]]] = [
    lambda w, p: _staff_access(w, purpose="MARKETING"),  # PA-001
    lambda w, p: _staff_access(w, data_items=["DEVICE_ID", "PHONE"]),  # PA-002
    lambda w, p: _share(w, recipient_id="AD_PARTNER", purpose="PAYMENT", data_items=["DEVICE_ID"],  # PA-003
                        legal_basis="CONSENT", service="homepage", actor_id="mkt-01"),
    lambda w, p: _share(w, data_items=["CARD_INFO", "NAME"]),  # PA-004
    lambda w, p: _transfer(w),  # PA-005
    _pa006,  # PA-006 (only with a declared processor)
    lambda w, p: _transfer(w, processor_id="CLOUD_CRM", from_processor_id="CALL_CENTER", task="HOSTING"),  # PA-007
    _pa008,  # PA-008
    lambda w, p: _staff_access(w, purpose="PAYMENT", data_items=["CARD_INFO"], service="payments",  # PA-009
                               actor_id="pay-ops"),
    lambda w, p: _staff_access(w, source_ip=None),  # PA-010
    lambda w, p: _staff_access(w, action="DOWNLOAD", reason=None),  # PA-011
    lambda w, p: _staff_access(w, action="EXPORT", record_count=5000, reason="고객 목록 추출"),  # PA-012
    lambda w, p: _share(w, recipient_country="JP"),  # PA-013
    lambda w, p: _staff_access(w, data_items=["HEALTH_INFO"], service="imfine-doctor-app"),  # PA-014
    lambda w, p: _staff_access(w, data_items=["RESIDENT_REG_NO"]),  # PA-015
]
