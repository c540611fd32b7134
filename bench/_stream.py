"""A synthetic, deterministic mixed event stream for the benchmarks.

All five event types in roughly the proportions a health app produces them, in non-decreasing
``occurred_at`` order, with a few percent violating (a chosen mix of rules). Not the simulator of
the pipeline issue: just enough realism that the checker takes its real code paths.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from privaudit.schemas.models import (
    AccessEvent,
    ConsentEvent,
    Event,
    MembershipEvent,
    ShareEvent,
    TransferEvent,
)

START = datetime(2024, 3, 1, tzinfo=UTC)
PURPOSES = ["MEMBER_MANAGEMENT", "CUSTOMER_SUPPORT", "USAGE_STATISTICS", "SERVICE_PROVISION", "CUSTOMIZED_SERVICE"]


def synthetic_stream(n: int, seed: int = 7, violation_rate: float = 0.03) -> list[Event]:
    rng = random.Random(seed)
    subjects = [f"subj-{rng.getrandbits(64):016x}" for _ in range(max(10, n // 20))]
    actors = [f"staff-{i:03d}" for i in range(200)]
    at = START
    events: list[Event] = []
    for _ in range(n):
        at += timedelta(milliseconds=rng.randint(0, 1000))
        common = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "occurred_at": at,
            "subject_id": rng.choice(subjects),
        }
        bad = rng.random() < violation_rate
        roll = rng.random()
        if roll < 0.03:
            change = "WITHDRAWAL" if rng.random() < 0.1 else "SIGNUP"
            events.append(MembershipEvent(service="imfine-doctor-app", change=change, **common))
        elif roll < 0.05:
            scope, target = rng.choice([("PURPOSE", "MARKETING"), ("SENSITIVE", "HEALTH_INFO"),
                                        ("THIRD_PARTY", "AD_PARTNER")])
            events.append(
                ConsentEvent(
                    service="imfine-doctor-app", consent_id=f"c-{rng.getrandbits(32):08x}", scope=scope,
                    target=target, granted=rng.random() < 0.8,
                    purposes=[target] if scope == "PURPOSE" else ["MARKETING"],
                    data_items=["DEVICE_ID", "NAME"], **common,
                )
            )
        elif roll < 0.12:
            recipient, country = ("AD_PARTNER", "US") if bad else ("CARD_ISSUER", "KR")
            events.append(
                ShareEvent(
                    service="payments", actor_id="pay-batch", recipient_id=recipient, recipient_country=country,
                    purpose="PAYMENT", data_items=["CARD_INFO"], legal_basis="CONTRACT", **common,
                )
            )
        elif roll < 0.13:
            events.append(
                TransferEvent(
                    service="support", actor_id=rng.choice(actors), processor_id="CALL_CENTER",
                    task="customer counselling",
                    purpose="CUSTOMER_SUPPORT", data_items=["DEVICE_ID"], destination_country="KR", **common,
                )
            )
        else:
            action = rng.choice(["VIEW", "VIEW", "VIEW", "USE", "UPDATE", "DOWNLOAD"])
            items = ["DEVICE_ID", "USAGE_RECORD"] if rng.random() < 0.5 else ["USAGE_RECORD"]
            purpose = rng.choice(PURPOSES)
            source_ip: str | None = f"10.1.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            reason: str | None = "monthly statistics" if action == "DOWNLOAD" else None
            if bad:
                kind = rng.randrange(5)
                if kind == 0:
                    purpose = "MARKETING"
                elif kind == 1:
                    items = items + ["HEALTH_INFO"]
                elif kind == 2:
                    items = items + ["RESIDENT_REG_NO"]
                elif kind == 3:
                    source_ip = None
                else:
                    action, reason = "EXPORT", None
            events.append(
                AccessEvent(
                    service=rng.choice(["imfine-doctor-app", "homepage", "support"]), actor_id=rng.choice(actors),
                    actor_type="STAFF", action=action, purpose=purpose, data_items=items, source_ip=source_ip,
                    record_count=1, reason=reason, **common,
                )
            )
    return events
