"""The rule catalogue. Ids and severities are part of the contract: never renumber, never reuse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["critical", "high", "medium"]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str
    law: str


@dataclass(frozen=True, slots=True)
class Violation:
    """One verdict: which rule an event broke, and the offending value in one line."""

    rule: str
    severity: Severity
    message: str
    policy_version: str

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "policy_version": self.policy_version,
        }


CATALOGUE: tuple[Rule, ...] = (
    Rule("PA-001", "high", "purpose not declared and not consented", "PIPA Art. 15, 18"),
    Rule("PA-002", "high", "item not declared for the purpose", "PIPA Art. 15, 16"),
    Rule("PA-003", "critical", "provision to an undeclared third party", "PIPA Art. 17, 18(2)"),
    Rule("PA-004", "high", "provision beyond the declared or consented items or purpose", "PIPA Art. 17"),
    Rule("PA-005", "critical", "processor not declared", "PIPA Art. 26(1)(2)"),
    Rule("PA-006", "high", "processor given a task or items outside its declaration", "PIPA Art. 26(1)(5)"),
    Rule("PA-007", "critical", "re-entrustment to an unapproved sub-processor", "PIPA Art. 26(6)"),
    Rule("PA-008", "high", "processing after withdrawal or contract end", "PIPA Art. 21"),
    Rule("PA-009", "critical", "card information kept or passed on", "policy: 카드정보 ... 별도 보관하지 않습니다"),
    Rule("PA-010", "medium", "incomplete access record", "Safety Measures Art. 8"),
    Rule("PA-011", "medium", "download or export without a reason", "Safety Measures Art. 8(2)"),
    Rule("PA-012", "high", "bulk access", "Safety Measures Art. 8"),
    Rule("PA-013", "critical", "undeclared cross-border transfer", "PIPA Art. 28-8"),
    Rule("PA-014", "critical", "sensitive information without separate consent", "PIPA Art. 23"),
    Rule("PA-015", "critical", "unique identifier processed without a statute", "PIPA Art. 24, 24-2"),
    Rule("PA-016", "critical", "an event id seen again with different content", "Safety Measures Art. 8(3)"),
    Rule("PA-017", "critical", "the stored record does not verify (changed, deleted or inserted)",
         "Safety Measures Art. 8(3)"),
    Rule("PA-018", "high", "events an emitter numbered never reached Kafka", "Safety Measures Art. 8(3)"),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in CATALOGUE}
SEVERITY: dict[str, Severity] = {rule.id: rule.severity for rule in CATALOGUE}


def rewrite_violation(event_id: str, first: str, policy_version: str) -> Violation:
    """PA-016 for a record that reuses ``event_id`` with other content than its copy at ``first``
    (where that was: an offset, a line). The first copy is what stays on record; this one is kept
    aside and not checked against PA-001..PA-015."""
    return Violation("PA-016", "critical",
                     f"event {event_id} came again with other content than at {first}; the first is kept, "
                     "this one set aside", policy_version)
