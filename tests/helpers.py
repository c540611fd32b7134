"""Builders for events and policies used across the tests."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from privaudit.checker import Checker
from privaudit.policy import Policy, default_policy_path, parse_policy
from privaudit.schemas.models import (
    AccessEvent,
    ConsentEvent,
    Event,
    MembershipEvent,
    ShareEvent,
    TransferEvent,
)

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


def at(minutes: float = 0, *, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def _common(kw: dict[str, Any]) -> dict[str, Any]:
    base = {
        "event_id": str(uuid.UUID(int=next(_ids), version=4)),
        "occurred_at": T0,
        "service": "imfine-doctor-app",
        "subject_id": "p-subject-1",
    }
    base.update(kw)
    return base


def access(**kw: Any) -> AccessEvent:
    fields = {
        "actor_id": "staff-1",
        "actor_type": "STAFF",
        "action": "VIEW",
        "purpose": "CUSTOMER_SUPPORT",
        "data_items": ["DEVICE_ID"],
        "source_ip": "10.0.0.1",
    }
    fields.update(kw)
    return AccessEvent(**_common(fields))


def share(**kw: Any) -> ShareEvent:
    fields = {
        "actor_id": "pay-gw",
        "recipient_id": "CARD_ISSUER",
        "recipient_country": "KR",
        "purpose": "PAYMENT",
        "data_items": ["CARD_INFO"],
        "legal_basis": "CONTRACT",
    }
    fields.update(kw)
    return ShareEvent(**_common(fields))


def transfer(**kw: Any) -> TransferEvent:
    fields = {
        "actor_id": "staff-1",
        "processor_id": "CALL_CENTER",
        "task": "COUNSELLING",
        "purpose": "CUSTOMER_SUPPORT",
        "data_items": ["DEVICE_ID"],
        "destination_country": "KR",
    }
    fields.update(kw)
    return TransferEvent(**_common(fields))


def consent(scope: str, target: str, granted: bool = True, **kw: Any) -> ConsentEvent:
    fields = {"consent_id": "c-1", "scope": scope, "target": target, "granted": granted}
    fields.update(kw)
    return ConsentEvent(**_common(fields))


def membership(change: str, **kw: Any) -> MembershipEvent:
    return MembershipEvent(**_common({"change": change, **kw}))


def shipped_document() -> dict[str, Any]:
    return yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))


def policy_with(edit: Callable[[dict[str, Any]], None]) -> Policy:
    """The shipped policy with ``edit`` applied to its YAML data."""
    data = shipped_document()
    edit(data)
    return parse_policy(yaml.safe_dump(data, allow_unicode=True), "<edited>")


def with_processors(data: dict[str, Any]) -> None:
    """Declare CALL_CENTER (re-entrusting to CLOUD_HOST) and CLOUD_HOST (KR and JP)."""
    data["versions"][0]["processors"] = [
        {
            "id": "CALL_CENTER", "name_ko": "콜센터", "name_en": "call centre", "tasks": ["COUNSELLING"],
            "items": ["DEVICE_ID", "USAGE_RECORD"], "countries": ["KR"], "sub_processors": ["CLOUD_HOST"],
            "source": "test",
        },
        {
            "id": "CLOUD_HOST", "name_ko": "클라우드", "name_en": "cloud host", "tasks": ["HOSTING"],
            "items": ["DEVICE_ID", "USAGE_RECORD"], "countries": ["KR", "JP"], "source": "test",
        },
    ]


def rules(checker: Checker, event: Event) -> list[str]:
    return [v.rule for v in checker.check(event)]
