"""The checker: events in stream order, verdicts out. Pure: no I/O, no clock, deterministic.

    checker = Checker(load_policy())
    for event in events:
        violations = checker.check(event)   # sorted by rule id, empty when clean

Consent and membership events update the state and never violate. Access, share and transfer
events are checked against the policy version in force at their ``occurred_at`` and the state as
the stream has shown it up to that time (see :mod:`privaudit.checker.state`). The rules are in
:mod:`privaudit.checker.rules`; ``docs/rules.md`` says how each reads the policy.
"""

from __future__ import annotations

from typing import Any

from privaudit.errors import NoPolicyInForce
from privaudit.i18n import N_
from privaudit.policy import Policy, PolicyVersion, from_millis, to_millis
from privaudit.schemas.models import (
    AccessEvent,
    ConsentEvent,
    Event,
    MembershipEvent,
    ShareEvent,
    TransferEvent,
)

from .rules import SEVERITY, Violation
from .state import DEFAULT_LATE_TOLERANCE_MS, CheckerState, Grant

_EMPTY: frozenset[str] = frozenset()
BULK_ACTIONS = frozenset({"DOWNLOAD", "EXPORT"})
_EXEMPT_BASES = frozenset({"STATUTE", "EMERGENCY"})


def _blank(value: str | None) -> bool:
    return not value or value.isspace()


def _iso(ms: int) -> str:
    return from_millis(ms).isoformat(timespec="milliseconds")


def _names(codes: list[str]) -> str:
    return ", ".join(dict.fromkeys(codes))  # each once, in event order


class Checker:
    """Checks events against a compiled policy, remembering what the stream has shown."""

    def __init__(
        self,
        policy: Policy,
        state: CheckerState | None = None,
        *,
        late_tolerance_ms: int = DEFAULT_LATE_TOLERANCE_MS,
        bulk_access: bool = True,
    ) -> None:
        """``bulk_access=False`` leaves PA-012 to a stage that sees all of an actor's events
        (the pipeline's bulk stage, :mod:`privaudit.consumers.bulk`)."""
        self.policy = policy
        self.bulk_access = bulk_access
        self.state = state if state is not None else CheckerState(late_tolerance_ms)
        # Bulk windows keep this much event time behind each actor's newest access.
        self._keep_ms = policy.max_window_ms + late_tolerance_ms
        self._late_tolerance_ms = late_tolerance_ms

    # -- public ---------------------------------------------------------------------------

    def check(self, event: Event) -> list[Violation]:
        """Verdicts for one event, sorted by rule id; records the event in the state."""
        ms = to_millis(event.occurred_at)
        if event.masked_fields:
            return self._with_masked(self._check(event, ms), event, ms)
        return self._check(event, ms)

    def _check(self, event: Event, ms: int) -> list[Violation]:
        if isinstance(event, ConsentEvent):
            return self._consent(event, ms)
        if isinstance(event, MembershipEvent):
            self.state.record_membership(event.subject_id, ms, event.change)
            return []
        version = self.policy.version_at(ms)
        if version is None:
            first = self.policy.versions[0]
            raise NoPolicyInForce(
                f"event {event.event_id} happened at {_iso(ms)}, before the first version of "
                f"policy {self.policy.policy_id} ({first.label}, in force from "
                f"{first.effective_from.isoformat()})"
            )
        if isinstance(event, AccessEvent):
            return self._access(event, ms, version)
        if isinstance(event, ShareEvent):
            return self._share(event, ms, version)
        return self._transfer(event, ms, version)

    def _with_masked(self, out: list[Violation], event: Event, ms: int) -> list[Violation]:
        """PA-015 for a resident registration number that was in a free-text field (masked before
        the event reached us: :func:`~privaudit.schemas.models.mask_event`), merged into the
        event's PA-015 if it has one."""
        version = self.policy.version_at(ms)
        if version is None:
            return out
        fields = ", ".join(event.masked_fields)
        for i, v in enumerate(out):
            if v.rule == "PA-015":  # unique identifiers in the items too: one verdict says both
                out[i] = Violation.of(v.rule, v.severity, v.policy_version,
                                      N_("unique identifier {items} processed without a statute; a resident "
                                         "registration number in {fields} (masked before it was stored)"),
                                      **dict(v.args), fields=fields)
                return out
        self._add(out, "PA-015", version, N_("a resident registration number in {fields} (masked before it was "
                                             "stored)"), fields=fields)
        out.sort(key=lambda v: v.rule)
        return out

    def snapshot(self) -> dict[str, Any]:
        return self.state.snapshot()

    @classmethod
    def restore(cls, policy: Policy, snapshot: dict[str, Any], **kwargs: Any) -> Checker:
        return cls(policy, CheckerState.restore(snapshot), **kwargs)

    # -- per event type -------------------------------------------------------------------

    def _consent(self, e: ConsentEvent, ms: int) -> list[Violation]:
        grant = Grant(e.granted, frozenset(e.purposes), frozenset(e.data_items), e.consent_id)
        self.state.record_consent(e.subject_id, e.scope, e.target, ms, grant)
        return []

    def _access(self, e: AccessEvent, ms: int, v: PolicyVersion) -> list[Violation]:
        out: list[Violation] = []
        subject, items = e.subject_id, e.data_items
        self._purpose_rules(out, v, subject, e.purpose, items, ms)
        if e.actor_type == "PROCESSOR":
            pid = e.processor_id
            decl = v.processors.get(pid) if pid else None
            if decl is None:
                if pid:
                    self._add(out, "PA-005", v, N_("access by a processor account with undeclared processor "
                                                   "'{processor}'"), processor=pid)
                else:
                    self._add(out, "PA-005", v, N_("access by a processor account with no processor_id"))
            else:
                extra = [i for i in items if i not in decl.items]
                if extra:
                    self._add(out, "PA-006", v, N_("processor '{processor}' accessed items outside its declaration: "
                                                   "{items}"), processor=pid, items=_names(extra))
        self._retention_rule(out, v, subject, e.purpose, ms, "access", e.action == "DELETE")
        special = not v.special_items.isdisjoint(items)
        if special and not v.not_retained.isdisjoint(items):
            kept = [i for i in items if i in v.not_retained]
            self._add(out, "PA-009", v, N_("{items} accessed ({action}); the policy keeps none, it only passes to a "
                                           "declared recipient"), items=_names(kept), action=e.action)
        if _blank(e.actor_id) or _blank(e.source_ip):
            if _blank(e.actor_id) and _blank(e.source_ip):
                self._add(out, "PA-010", v, N_("access record lacks actor_id and source_ip"))
            elif _blank(e.actor_id):
                self._add(out, "PA-010", v, N_("access record lacks actor_id"))
            else:
                self._add(out, "PA-010", v, N_("access record lacks source_ip"))
        bulk_action = e.action in BULK_ACTIONS
        if bulk_action and _blank(e.reason):
            self._add(out, "PA-011", v, N_("{action} of {count} record(s) without a reason"), action=e.action,
                      count=e.record_count)
        if self.bulk_access:
            self.bulk_verdict(out, v, e.actor_id, e.subject_id, e.action, e.record_count, ms)
        if special:
            self._special_rules(out, v, subject, items, ms, statute=False)
        return out

    def _share(self, e: ShareEvent, ms: int, v: PolicyVersion) -> list[Violation]:
        out: list[Violation] = []
        subject, rid, purpose, items = e.subject_id, e.recipient_id, e.purpose, e.data_items
        decl = v.recipients.get(rid)
        for_purpose = decl is not None and purpose in decl.purposes
        if e.legal_basis not in _EXEMPT_BASES:
            consent = self.state.grant(subject, "THIRD_PARTY", rid, ms)
            if not for_purpose and consent is None:
                if decl is not None:
                    template = N_("share to recipient '{recipient}' (declared for other purposes) for purpose "
                                  "'{purpose}' with no THIRD_PARTY consent, basis {basis}")
                else:
                    template = N_("share to recipient '{recipient}' (not declared) for purpose '{purpose}' with no "
                                  "THIRD_PARTY consent, basis {basis}")
                self._add(out, "PA-003", v, template, recipient=rid, purpose=purpose, basis=e.legal_basis)
            else:
                self._share_scope_rule(out, v, e, decl if for_purpose else None, consent)
        self._retention_rule(out, v, subject, purpose, ms, "share", False)
        if not v.not_retained.isdisjoint(items):
            passed = [i for i in items if i in v.not_retained and (decl is None or i not in decl.items)]
            if passed:
                self._add(out, "PA-009", v, N_("{items} shared with '{recipient}', which is not declared to receive "
                                               "it"), items=_names(passed), recipient=rid)
        countries = decl.countries if decl else _EMPTY
        self._country_rule(out, v, subject, e.recipient_country, countries, ms, recipient=rid)
        if not v.special_items.isdisjoint(items):
            self._special_rules(out, v, subject, items, ms, statute=e.legal_basis == "STATUTE")
        return out

    def _transfer(self, e: TransferEvent, ms: int, v: PolicyVersion) -> list[Violation]:
        out: list[Violation] = []
        subject, pid, items = e.subject_id, e.processor_id, e.data_items
        self._purpose_rules(out, v, subject, e.purpose, items, ms)
        decl = v.processors.get(pid)
        if decl is None:
            self._add(out, "PA-005", v, N_("transfer to undeclared processor '{processor}' (task '{task}')"),
                      processor=pid, task=e.task)
        else:
            extra = [i for i in items if i not in decl.items]
            if e.task not in decl.tasks and extra:
                self._add(out, "PA-006", v, N_("processor '{processor}' given task '{task}' and items {items} "
                                               "outside its declaration"), processor=pid, task=e.task,
                          items=_names(extra))
            elif e.task not in decl.tasks:
                self._add(out, "PA-006", v, N_("processor '{processor}' given task '{task}' outside its declaration"),
                          processor=pid, task=e.task)
            elif extra:
                self._add(out, "PA-006", v, N_("processor '{processor}' given items {items} outside its declaration"),
                          processor=pid, items=_names(extra))
        parent_id = e.from_processor_id
        if parent_id:
            parent = v.processors.get(parent_id)
            if parent is None:
                self._add(out, "PA-007", v, N_("re-entrustment from '{parent}' to '{processor}': '{parent}' is not a "
                                               "declared processor"), parent=parent_id, processor=pid)
            elif pid not in parent.sub_processors:
                self._add(out, "PA-007", v, N_("re-entrustment from '{parent}' to '{processor}': '{parent}' has no "
                                               "such approved sub-processor"), parent=parent_id, processor=pid)
        self._retention_rule(out, v, subject, e.purpose, ms, "transfer", False)
        if not v.not_retained.isdisjoint(items):
            passed = [i for i in items if i in v.not_retained and (decl is None or i not in decl.items)]
            if passed:
                self._add(out, "PA-009", v, N_("{items} transferred to '{processor}', which is not declared to receive "
                                               "it"), items=_names(passed), processor=pid)
        countries = decl.countries if decl else _EMPTY
        self._country_rule(out, v, subject, e.destination_country, countries, ms, processor=pid)
        if not v.special_items.isdisjoint(items):
            self._special_rules(out, v, subject, items, ms, statute=False)
        return out

    # -- rules shared by several event types ----------------------------------------------

    def _purpose_rules(
        self, out: list[Violation], v: PolicyVersion, subject: str, purpose: str, items: list[str], ms: int
    ) -> None:
        """PA-001 (purpose) and, only where it did not fire, PA-002 (items for the purpose)."""
        if purpose in v.purposes:
            allowed = v.purpose_items[purpose]
            if allowed.issuperset(items):
                return
            consent = self.state.grant(subject, "PURPOSE", purpose, ms)
        else:
            consent = self.state.grant(subject, "PURPOSE", purpose, ms)
            if consent is None:
                self._add(out, "PA-001", v, N_("purpose '{purpose}' is not declared in policy {version} and the "
                                               "subject has no PURPOSE consent for it"), purpose=purpose,
                          version=v.label)
                return
            allowed = _EMPTY
        extra = [i for i in items if i not in allowed and (consent is None or i not in consent.items)]
        if extra:
            self._add(out, "PA-002", v, N_("items not declared for purpose '{purpose}' nor listed by a PURPOSE "
                                           "consent: {items}"), purpose=purpose, items=_names(extra))

    def _share_scope_rule(
        self, out: list[Violation], v: PolicyVersion, e: ShareEvent, decl: Any, consent: Grant | None
    ) -> None:
        """PA-004: a share on a declaration or a consent must stay within what they cover."""
        purpose_off = decl is None and (consent is None or e.purpose not in consent.purposes)
        covered = (decl.items if decl is not None else _EMPTY) | (consent.items if consent else _EMPTY)
        extra = [i for i in e.data_items if i not in covered]
        if purpose_off and extra:
            self._add(out, "PA-004", v, N_("share to '{recipient}' carries purpose '{purpose}' and items {items} "
                                           "not covered by its declaration or consent"), recipient=e.recipient_id,
                      purpose=e.purpose, items=_names(extra))
        elif purpose_off:
            self._add(out, "PA-004", v, N_("share to '{recipient}' carries purpose '{purpose}' not covered by its "
                                           "declaration or consent"), recipient=e.recipient_id, purpose=e.purpose)
        elif extra:
            self._add(out, "PA-004", v, N_("share to '{recipient}' carries items {items} not covered by its "
                                           "declaration or consent"), recipient=e.recipient_id, items=_names(extra))

    def _retention_rule(
        self, out: list[Violation], v: PolicyVersion, subject: str, purpose: str, ms: int, what: str, deleting: bool
    ) -> None:
        """PA-008: after withdrawal or contract end only deletion and legal retention."""
        latest = self.state.membership_at(subject, ms)
        if latest is None or latest[1] not in v.retention_ends:
            return
        if deleting or purpose in v.after_end_purposes:
            return
        templates = {
            "access": N_("access for purpose '{purpose}' after the subject's {change} at {at}"),
            "share": N_("share for purpose '{purpose}' after the subject's {change} at {at}"),
            "transfer": N_("transfer for purpose '{purpose}' after the subject's {change} at {at}"),
        }
        self._add(out, "PA-008", v, templates[what], purpose=purpose, change=latest[1], at=_iso(latest[0]))

    def bulk_verdict(
        self, out: list[Violation], v: PolicyVersion, actor_id: str | None, subject_id: str, action: str,
        record_count: int, ms: int,
    ) -> None:
        """PA-012: too many distinct subjects per actor in the window, or one big download.

        Public so the pipeline's bulk stage applies the very same rule to an actor's accesses
        gathered from every partition, in time order."""
        threshold = v.bulk_threshold
        distinct = 0
        if actor_id and not actor_id.isspace():  # an actor to count (PA-010 covers a blank one)
            distinct = self.state.touch(actor_id, ms, subject_id, v.bulk_window_ms, self._keep_ms)
        if distinct > threshold:
            minutes = v.bulk_window_ms // 60_000
            self._add(out, "PA-012", v, N_("actor '{actor}' touched {count} distinct subjects in {minutes} min "
                                           "(threshold {threshold})"), actor=actor_id, count=distinct,
                      minutes=minutes, threshold=threshold)
        elif action in BULK_ACTIONS and record_count > threshold:
            self._add(out, "PA-012", v, N_("{action} of {count} records at once (threshold {threshold})"),
                      action=action, count=record_count, threshold=threshold)

    def _country_rule(
        self, out: list[Violation], v: PolicyVersion, subject: str, country: str, declared: frozenset[str], ms: int,
        *, recipient: str = "", processor: str = "",
    ) -> None:
        """PA-013: abroad only where declared for that party or consented for that country."""
        if country == v.home_country or country in declared:
            return
        if self.state.grant(subject, "CROSS_BORDER", country, ms) is None:
            if recipient:
                self._add(out, "PA-013", v, N_("data to {country} for recipient '{recipient}': not declared, no "
                                               "CROSS_BORDER consent"), country=country, recipient=recipient)
            else:
                self._add(out, "PA-013", v, N_("data to {country} for processor '{processor}': not declared, no "
                                               "CROSS_BORDER consent"), country=country, processor=processor)

    def _special_rules(
        self, out: list[Violation], v: PolicyVersion, subject: str, items: list[str], ms: int, *, statute: bool
    ) -> None:
        """PA-014 (sensitive items need a SENSITIVE consent) and PA-015 (unique identifiers)."""
        unconsented = [
            i for i in items if i in v.sensitive and self.state.grant(subject, "SENSITIVE", i, ms) is None
        ]
        if unconsented:
            self._add(out, "PA-014", v, N_("sensitive {items} without a SENSITIVE consent"), items=_names(unconsented))
        if not statute:
            ids = [i for i in items if i in v.unique_ids]
            if ids:
                self._add(out, "PA-015", v, N_("unique identifier {items} processed without a statute"),
                          items=_names(ids))

    @staticmethod
    def _add(out: list[Violation], rule: str, v: PolicyVersion, template: str, **args: object) -> None:
        """A verdict of ``rule``: ``template`` (a text of the message catalogue) with ``args``."""
        out.append(Violation.of(rule, SEVERITY[rule], v.label, template, **args))
