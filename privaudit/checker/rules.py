"""The rule catalogue. Ids and severities are part of the contract: never renumber, never reuse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from privaudit.i18n import N_

Severity = Literal["critical", "high", "medium"]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str
    law: str
    #: what to do about a violation (shown on its event's page and in the report)
    remedy: str = ""


@dataclass(frozen=True, slots=True)
class Violation:
    """One verdict: which rule an event broke, and the offending value in one line.

    ``message`` is the English line; ``template`` and ``args`` are what it was made of (a text of
    the message catalogue with ``{name}`` parameters, and their values: codes, numbers, times), so
    that the console and the report can say it in Korean: ``gettext(template).format(**args)``."""

    rule: str
    severity: Severity
    message: str
    policy_version: str
    template: str = ""
    args: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, rule: str, severity: Severity, policy_version: str, template: str, **args: object) -> Violation:
        """A verdict whose message is ``template`` with ``args``."""
        values = {name: str(value) for name, value in args.items()}
        return cls(rule, severity, template.format_map(values), policy_version, template, tuple(values.items()))

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "policy_version": self.policy_version,
        }
        if self.template:
            out.update(template=self.template, args=dict(self.args))
        return out


CATALOGUE: tuple[Rule, ...] = (
    Rule("PA-001", "high", N_("purpose not declared and not consented"), N_("PIPA Art. 15, 18"),
         N_("Stop the use for this purpose, or declare the purpose in the privacy policy and obtain consent first.")),
    Rule("PA-002", "high", N_("item not declared for the purpose"), N_("PIPA Art. 15, 16"),
         N_("Stop processing the item for this purpose, or add it to the purpose's declared items in the policy.")),
    Rule("PA-003", "critical", N_("provision to an undeclared third party"), N_("PIPA Art. 17, 18(2)"),
         N_("Stop the provision; find who sent what to whom; declare the recipient or obtain consent, and "
            "notify affected members if data left without a basis.")),
    Rule("PA-004", "high", N_("provision beyond the declared or consented items or purpose"), N_("PIPA Art. 17"),
         N_("Limit the provision to the declared or consented items and purpose; review the recipient's contract.")),
    Rule("PA-005", "critical", N_("processor not declared"), N_("PIPA Art. 26(1)(2)"),
         N_("Stop the transfer; sign a processing contract and disclose the processor in the policy before resuming.")),
    Rule("PA-006", "high", N_("processor given a task or items outside its declaration"), N_("PIPA Art. 26(1)(5)"),
         N_("Limit the processor to its declared tasks and items; amend the contract and the policy if the "
            "task is real.")),
    Rule("PA-007", "critical", N_("re-entrustment to an unapproved sub-processor"), N_("PIPA Art. 26(6)"),
         N_("Stop the re-entrustment; get the controller's approval and disclose the sub-processor.")),
    Rule("PA-008", "high", N_("processing after withdrawal or contract end"), N_("PIPA Art. 21"),
         N_("Stop processing this member's data; check that withdrawal and contract end reach every "
            "service, and destroy what must not be kept.")),
    Rule("PA-009", "critical", N_("card information kept or passed on"),
         N_("policy: 카드정보 ... 별도 보관하지 않습니다"),
         N_("Remove the stored card data at once and find the code path that kept or passed it on.")),
    Rule("PA-010", "medium", N_("incomplete access record"), N_("Safety Measures Art. 8"),
         N_("Fix the emitting service so that each access record names its actor and source address.")),
    Rule("PA-011", "medium", N_("download or export without a reason"), N_("Safety Measures Art. 8(2)"),
         N_("Ask the actor for the reason of the download and record it; make the service require one.")),
    Rule("PA-012", "high", N_("bulk access"), N_("Safety Measures Art. 8"),
         N_("Ask the actor for a justification (소명); check the access against their duties; lock the "
            "account if it is not justified.")),
    Rule("PA-013", "critical", N_("undeclared cross-border transfer"), N_("PIPA Art. 28-8"),
         N_("Stop the transfer abroad; disclose the country and recipient or obtain separate consent.")),
    Rule("PA-014", "critical", N_("sensitive information without separate consent"), N_("PIPA Art. 23"),
         N_("Stop processing the sensitive item; obtain separate consent or remove it.")),
    Rule("PA-015", "critical", N_("unique identifier processed without a statute"), N_("PIPA Art. 24, 24-2"),
         N_("Stop processing the identifier unless a statute requires it; mask or delete what was stored.")),
    Rule("PA-016", "critical", N_("an event id seen again with different content"), N_("Safety Measures Art. 8(3)"),
         N_("Find which service re-sent the event with other content; the first copy stays on record; treat "
            "it as possible tampering.")),
    Rule("PA-017", "critical", N_("the stored record does not verify (changed, deleted or inserted)"),
         N_("Safety Measures Art. 8(3)"),
         N_("Treat it as an incident: find who changed the store (ClickHouse query log) and restore from "
            "Kafka or a backup.")),
    Rule("PA-018", "high", N_("events an emitter numbered never reached Kafka"), N_("Safety Measures Art. 8(3)"),
         N_("Find why the emitter's records never reached Kafka (spool, network, broker) and replay its spool.")),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in CATALOGUE}
SEVERITY: dict[str, Severity] = {rule.id: rule.severity for rule in CATALOGUE}


def rewrite_violation(event_id: str, first: str, policy_version: str) -> Violation:
    """PA-016 for a record that reuses ``event_id`` with other content than its copy at ``first``
    (where that was: an offset, a line). The first copy is what stays on record; this one is kept
    aside and not checked against PA-001..PA-015."""
    return Violation.of("PA-016", "critical", policy_version,
                        N_("event {event_id} came again with other content than at {first}; the first is kept, "
                           "this one set aside"), event_id=event_id, first=first)
