"""Every rule of the catalogue, firing and not firing, against the shipped policy unless noted."""

from __future__ import annotations

import pytest

from privaudit.checker import Checker
from privaudit.checker.rules import CATALOGUE, RULES
from tests.helpers import access, at, consent, membership, policy_with, rules, share, transfer, with_processors


@pytest.fixture(scope="module")
def processors_policy():
    return policy_with(with_processors)


def test_catalogue_ids_and_severities_are_the_contract():
    assert [(r.id, r.severity) for r in CATALOGUE] == [
        ("PA-001", "high"), ("PA-002", "high"), ("PA-003", "critical"), ("PA-004", "high"),
        ("PA-005", "critical"), ("PA-006", "high"), ("PA-007", "critical"), ("PA-008", "high"),
        ("PA-009", "critical"), ("PA-010", "medium"), ("PA-011", "medium"), ("PA-012", "high"),
        ("PA-013", "critical"), ("PA-014", "critical"), ("PA-015", "critical"), ("PA-016", "critical"),
        ("PA-017", "critical"), ("PA-018", "high"),
    ]


def test_a_clean_access_has_no_violation(checker):
    assert checker.check(access()) == []


def test_verdict_carries_rule_severity_message_and_version(checker):
    [v] = checker.check(access(purpose="MARKETING"))
    assert (v.rule, v.severity, v.policy_version) == ("PA-001", RULES["PA-001"].severity, "1.0")
    assert "MARKETING" in v.message


class TestPA001Purpose:
    def test_fires_on_undeclared_purpose(self, checker):
        assert rules(checker, access(purpose="MARKETING")) == ["PA-001"]
        assert rules(checker, transfer(purpose="MARKETING")) == ["PA-001", "PA-005"]

    def test_every_declared_purpose_is_clean(self, checker, policy):
        for purpose in policy.versions[0].purposes:
            assert rules(checker, access(purpose=purpose)) == [], purpose

    def test_a_granted_purpose_consent_allows_it(self, checker):
        checker.check(consent("PURPOSE", "MARKETING", data_items=["DEVICE_ID"], occurred_at=at(0)))
        assert rules(checker, access(purpose="MARKETING", occurred_at=at(1))) == []

    def test_a_consent_for_another_subject_or_purpose_does_not(self, checker):
        checker.check(consent("PURPOSE", "MARKETING", subject_id="p-other", occurred_at=at(0)))
        checker.check(consent("PURPOSE", "RESEARCH", occurred_at=at(0)))
        assert rules(checker, access(purpose="MARKETING", occurred_at=at(1))) == ["PA-001"]

    def test_withdrawal_ends_the_consent(self, checker):
        checker.check(consent("PURPOSE", "MARKETING", data_items=["DEVICE_ID"], occurred_at=at(0)))
        checker.check(consent("PURPOSE", "MARKETING", granted=False, occurred_at=at(5)))
        assert rules(checker, access(purpose="MARKETING", occurred_at=at(6))) == ["PA-001"]

    def test_a_late_access_sees_the_consent_in_force_when_it_happened(self, checker):
        checker.check(consent("PURPOSE", "MARKETING", data_items=["DEVICE_ID"], occurred_at=at(0)))
        checker.check(consent("PURPOSE", "MARKETING", granted=False, occurred_at=at(10)))
        assert rules(checker, access(purpose="MARKETING", occurred_at=at(5))) == []  # late, consented then
        assert rules(checker, access(purpose="MARKETING", occurred_at=at(-5))) == ["PA-001"]  # before the grant

    def test_a_late_consent_does_not_change_verdicts_already_given_nor_cover_the_past(self, checker):
        assert rules(checker, access(purpose="MARKETING", occurred_at=at(10))) == ["PA-001"]
        checker.check(consent("PURPOSE", "MARKETING", data_items=["DEVICE_ID"], occurred_at=at(5)))  # late
        assert rules(checker, access(purpose="MARKETING", occurred_at=at(11))) == []
        assert rules(checker, access(purpose="MARKETING", occurred_at=at(4))) == ["PA-001"]

    def test_same_time_changes_the_later_one_in_the_stream_wins(self, checker):
        checker.check(consent("PURPOSE", "MARKETING", data_items=["DEVICE_ID"], occurred_at=at(0)))
        checker.check(consent("PURPOSE", "MARKETING", granted=False, occurred_at=at(0)))
        assert rules(checker, access(purpose="MARKETING", occurred_at=at(0))) == ["PA-001"]


class TestPA002Items:
    def test_fires_on_an_item_not_declared_for_the_purpose(self, checker):
        assert rules(checker, access(data_items=["DEVICE_ID", "PHONE"])) == ["PA-002"]
        # CARD_INFO is declared for PAYMENT only
        assert "PA-002" in rules(checker, access(purpose="CUSTOMER_SUPPORT", data_items=["CARD_INFO"]))
        assert "PA-002" not in rules(checker, access(purpose="PAYMENT", data_items=["CARD_INFO"]))

    def test_unknown_item_codes_count_as_undeclared(self, checker):
        [v] = checker.check(access(data_items=["FOO_BAR"]))
        assert v.rule == "PA-002" and "FOO_BAR" in v.message

    def test_only_where_pa001_did_not_fire(self, checker):
        assert rules(checker, access(purpose="MARKETING", data_items=["PHONE"])) == ["PA-001"]

    def test_a_purpose_consent_listing_the_item_covers_it(self, checker):
        checker.check(consent("PURPOSE", "CUSTOMER_SUPPORT", data_items=["PHONE"], occurred_at=at(0)))
        assert rules(checker, access(data_items=["DEVICE_ID", "PHONE"], occurred_at=at(1))) == []
        assert rules(checker, access(data_items=["EMAIL"], occurred_at=at(1))) == ["PA-002"]

    def test_with_a_consented_undeclared_purpose_only_the_consent_lists_items(self, checker):
        checker.check(consent("PURPOSE", "MARKETING", data_items=["EMAIL"], occurred_at=at(0)))
        assert rules(checker, access(purpose="MARKETING", data_items=["EMAIL"], occurred_at=at(1))) == []
        assert rules(checker, access(purpose="MARKETING", data_items=["DEVICE_ID"], occurred_at=at(1))) == ["PA-002"]

    def test_applies_to_transfers(self, checker):
        assert rules(checker, transfer(data_items=["PHONE"])) == ["PA-002", "PA-005"]


class TestPA003UndeclaredRecipient:
    def test_payment_share_with_the_card_issuer_is_clean(self, checker):
        assert rules(checker, share()) == []

    def test_fires_on_an_undeclared_recipient(self, checker):
        ev = share(recipient_id="AD_PARTNER", purpose="PAYMENT", data_items=["DEVICE_ID"])
        assert rules(checker, ev) == ["PA-003"]

    def test_fires_on_a_declared_recipient_for_another_purpose(self, checker):
        assert "PA-003" in rules(checker, share(purpose="MARKETING", data_items=["DEVICE_ID"]))

    def test_not_with_a_third_party_consent(self, checker):
        checker.check(consent("THIRD_PARTY", "AD_PARTNER", purposes=["MARKETING"], data_items=["DEVICE_ID"],
                              occurred_at=at(0)))
        ev = share(recipient_id="AD_PARTNER", purpose="MARKETING", data_items=["DEVICE_ID"], legal_basis="CONSENT",
                   occurred_at=at(1))
        assert rules(checker, ev) == []

    @pytest.mark.parametrize("basis", ["STATUTE", "EMERGENCY"])
    def test_not_on_statute_or_emergency(self, checker, basis):
        ev = share(recipient_id="POLICE", purpose="LAW_ENFORCEMENT", data_items=["DEVICE_ID"], legal_basis=basis)
        assert rules(checker, ev) == []

    def test_withdrawn_third_party_consent_fires_again(self, checker):
        checker.check(consent("THIRD_PARTY", "AD_PARTNER", purposes=["MARKETING"], data_items=["DEVICE_ID"],
                              occurred_at=at(0)))
        checker.check(consent("THIRD_PARTY", "AD_PARTNER", granted=False, occurred_at=at(2)))
        ev = share(recipient_id="AD_PARTNER", purpose="MARKETING", data_items=["DEVICE_ID"], occurred_at=at(3))
        assert rules(checker, ev) == ["PA-003"]


class TestPA004ShareScope:
    def test_declared_recipient_with_extra_items(self, checker):
        assert rules(checker, share(data_items=["CARD_INFO", "NAME"])) == ["PA-004"]

    def test_consented_share_beyond_the_consent(self, checker):
        checker.check(consent("THIRD_PARTY", "AD_PARTNER", purposes=["MARKETING"], data_items=["DEVICE_ID"],
                              occurred_at=at(0)))
        base = {"recipient_id": "AD_PARTNER", "legal_basis": "CONSENT", "occurred_at": at(1)}
        assert rules(checker, share(purpose="MARKETING", data_items=["DEVICE_ID", "LOCATION"], **base)) == ["PA-004"]
        assert rules(checker, share(purpose="RESEARCH", data_items=["DEVICE_ID"], **base)) == ["PA-004"]
        assert rules(checker, share(purpose="MARKETING", data_items=["DEVICE_ID"], **base)) == []

    def test_a_consent_can_extend_a_declaration(self, checker):
        checker.check(consent("THIRD_PARTY", "CARD_ISSUER", purposes=["PAYMENT"], data_items=["NAME"],
                              occurred_at=at(0)))
        assert rules(checker, share(data_items=["CARD_INFO", "NAME"], occurred_at=at(1))) == []

    def test_not_when_pa003_fired_or_on_statute(self, checker):
        assert rules(checker, share(recipient_id="X_CORP", data_items=["NAME", "EMAIL"])) == ["PA-003"]
        assert rules(checker, share(data_items=["CARD_INFO", "NAME"], legal_basis="STATUTE")) == []


class TestPA005to007Processors:
    def test_every_transfer_is_pa005_under_the_shipped_policy(self, checker):
        assert rules(checker, transfer()) == ["PA-005"]

    def test_processor_access_without_or_with_an_undeclared_processor_id(self, checker):
        assert rules(checker, access(actor_type="PROCESSOR", processor_id=None)) == ["PA-005"]
        assert rules(checker, access(actor_type="PROCESSOR", processor_id="NOBODY")) == ["PA-005"]
        assert rules(checker, access(actor_type="STAFF", processor_id=None)) == []

    def test_declared_processor_within_its_declaration_is_clean(self, processors_policy):
        checker = Checker(processors_policy)
        assert rules(checker, transfer()) == []
        assert rules(checker, access(actor_type="PROCESSOR", processor_id="CALL_CENTER")) == []

    def test_pa006_task_or_items_outside_the_declaration(self, processors_policy):
        checker = Checker(processors_policy)
        assert rules(checker, transfer(task="MARKETING_CALLS")) == ["PA-006"]
        assert rules(checker, transfer(data_items=["DEVICE_ID", "NAME"])) == ["PA-002", "PA-006"]
        by_processor = access(actor_type="PROCESSOR", processor_id="CALL_CENTER", data_items=["PHONE"])
        assert rules(checker, by_processor) == ["PA-002", "PA-006"]

    def test_pa007_reentrustment(self, processors_policy):
        checker = Checker(processors_policy)
        approved = transfer(processor_id="CLOUD_HOST", from_processor_id="CALL_CENTER", task="HOSTING")
        assert rules(checker, approved) == []
        backwards = transfer(processor_id="CALL_CENTER", from_processor_id="CLOUD_HOST")
        assert rules(checker, backwards) == ["PA-007"]
        from_unknown = transfer(processor_id="CLOUD_HOST", from_processor_id="SHADOW_IT", task="HOSTING")
        assert rules(checker, from_unknown) == ["PA-007"]
        to_unknown = transfer(processor_id="SHADOW_IT", from_processor_id="CALL_CENTER")
        assert rules(checker, to_unknown) == ["PA-005", "PA-007"]


class TestPA008AfterMembershipEnds:
    @pytest.mark.parametrize("change", ["WITHDRAWAL", "CONTRACT_END"])
    def test_fires_after_the_end(self, checker, change):
        checker.check(membership(change, occurred_at=at(0)))
        assert rules(checker, access(occurred_at=at(1))) == ["PA-008"]
        assert rules(checker, share(occurred_at=at(1))) == ["PA-008"]
        assert rules(checker, transfer(occurred_at=at(1))) == ["PA-005", "PA-008"]

    def test_deletion_and_legal_retention_are_allowed(self, checker):
        checker.check(membership("WITHDRAWAL", occurred_at=at(0)))
        assert rules(checker, access(action="DELETE", occurred_at=at(1))) == []
        assert rules(checker, access(purpose="LEGAL_RETENTION", action="USE", occurred_at=at(1))) == []

    def test_not_before_the_end_even_if_the_event_arrives_late(self, checker):
        checker.check(membership("SIGNUP", occurred_at=at(0)))
        checker.check(membership("WITHDRAWAL", occurred_at=at(10)))
        assert rules(checker, access(occurred_at=at(9))) == []
        assert rules(checker, access(occurred_at=at(10))) == ["PA-008"]  # the same millisecond counts

    def test_signing_up_again_restores_processing(self, checker):
        checker.check(membership("WITHDRAWAL", occurred_at=at(0)))
        checker.check(membership("SIGNUP", occurred_at=at(5)))
        assert rules(checker, access(occurred_at=at(6))) == []

    def test_other_subjects_are_not_affected(self, checker):
        checker.check(membership("WITHDRAWAL", subject_id="p-gone", occurred_at=at(0)))
        assert rules(checker, access(occurred_at=at(1))) == []


class TestPA009CardInfo:
    def test_any_access_to_card_info(self, checker):
        assert rules(checker, access(purpose="PAYMENT", action="VIEW", data_items=["CARD_INFO"])) == ["PA-009"]

    def test_share_to_the_declared_receiver_is_clean_to_anyone_else_it_fires(self, checker):
        assert rules(checker, share()) == []
        assert rules(checker, share(recipient_id="PG_COMPANY")) == ["PA-003", "PA-009"]

    def test_transfer_of_card_info(self, checker, processors_policy):
        assert rules(checker, transfer(purpose="PAYMENT", data_items=["CARD_INFO"])) == ["PA-005", "PA-009"]
        declared = Checker(processors_policy)
        assert "PA-009" in rules(declared, transfer(purpose="PAYMENT", data_items=["CARD_INFO"]))


class TestPA010AccessRecord:
    @pytest.mark.parametrize(
        "fields",
        [{"actor_id": None}, {"source_ip": None}, {"source_ip": ""}, {"actor_id": "  "},
         {"actor_id": None, "source_ip": None}],
    )
    def test_fires_when_account_or_place_is_missing(self, checker, fields):
        assert rules(checker, access(**fields)) == ["PA-010"]

    def test_not_on_shares_or_transfers(self, checker):
        assert rules(checker, share(actor_id=None)) == []


class TestPA011Reason:
    @pytest.mark.parametrize("action", ["DOWNLOAD", "EXPORT"])
    @pytest.mark.parametrize("reason", [None, "", "   "])
    def test_fires_without_a_reason(self, checker, action, reason):
        assert rules(checker, access(action=action, reason=reason)) == ["PA-011"]

    def test_not_with_a_reason_or_for_other_actions(self, checker):
        assert rules(checker, access(action="DOWNLOAD", reason="민원 처리 자료")) == []
        assert rules(checker, access(action="PRINT", reason=None)) == []


class TestPA012Bulk:
    def test_the_101st_distinct_subject_in_an_hour_fires(self, checker):
        for i in range(100):
            assert rules(checker, access(subject_id=f"p-{i}", occurred_at=at(i * 0.5))) == []
        assert rules(checker, access(subject_id="p-100", occurred_at=at(55))) == ["PA-012"]
        # the actor stays over the threshold: any access in the window fires
        assert rules(checker, access(subject_id="p-0", occurred_at=at(56))) == ["PA-012"]
        # another actor is counted on its own
        assert rules(checker, access(actor_id="staff-2", subject_id="p-5", occurred_at=at(56))) == []

    def test_repeated_subjects_count_once(self, checker):
        for i in range(300):
            assert rules(checker, access(subject_id=f"p-{i % 100}", occurred_at=at(i * 0.1))) == []

    def test_the_window_slides(self, checker):
        for i in range(100):
            checker.check(access(subject_id=f"p-{i}", occurred_at=at(0)))
        # exactly 60 minutes later the first hundred are out of the window (t - 60 min, t]
        assert rules(checker, access(subject_id="p-new", occurred_at=at(60))) == []
        assert rules(checker, access(subject_id="p-new2", occurred_at=at(59.99))) == ["PA-012"]  # late, inside

    def test_accesses_without_an_actor_are_not_counted(self, checker):
        for i in range(150):
            assert rules(checker, access(actor_id=None, subject_id=f"p-{i}")) == ["PA-010"]

    def test_one_large_download_or_export(self, checker):
        assert rules(checker, access(action="DOWNLOAD", reason="audit", record_count=101)) == ["PA-012"]
        assert rules(checker, access(action="EXPORT", reason="audit", record_count=100)) == []
        assert rules(checker, access(action="VIEW", record_count=5000)) == []


class TestPA013CrossBorder:
    def test_share_abroad_undeclared_fires_unless_consented(self, checker):
        assert rules(checker, share(recipient_country="US")) == ["PA-013"]
        checker.check(consent("CROSS_BORDER", "US", occurred_at=at(0)))
        assert rules(checker, share(recipient_country="US", occurred_at=at(1))) == []
        assert rules(checker, share(recipient_country="JP", occurred_at=at(1))) == ["PA-013"]

    def test_declared_processor_country(self, processors_policy):
        checker = Checker(processors_policy)
        hosting = {"processor_id": "CLOUD_HOST", "task": "HOSTING"}
        assert rules(checker, transfer(destination_country="JP", **hosting)) == []
        assert rules(checker, transfer(destination_country="SG", **hosting)) == ["PA-013"]
        assert rules(checker, transfer(destination_country="JP")) == ["PA-013"]  # CALL_CENTER is KR only


class TestPA014Sensitive:
    def test_sensitive_items_need_a_sensitive_consent(self, checker):
        checker.check(consent("PURPOSE", "CUSTOMER_SUPPORT", data_items=["HEALTH_INFO"], occurred_at=at(0)))
        assert rules(checker, access(data_items=["HEALTH_INFO"], occurred_at=at(1))) == ["PA-014"]
        checker.check(consent("SENSITIVE", "HEALTH_INFO", occurred_at=at(2)))
        assert rules(checker, access(data_items=["HEALTH_INFO"], occurred_at=at(3))) == []
        ev = access(data_items=["HEALTH_INFO", "GENETIC_INFO"], occurred_at=at(3))
        assert rules(checker, ev) == ["PA-002", "PA-014"]

    def test_withdrawn_and_in_shares(self, checker):
        checker.check(consent("SENSITIVE", "BIOMETRIC_INFO", occurred_at=at(0)))
        checker.check(consent("SENSITIVE", "BIOMETRIC_INFO", granted=False, occurred_at=at(1)))
        ev = share(recipient_id="LAB", purpose="RESEARCH", data_items=["BIOMETRIC_INFO"], legal_basis="STATUTE",
                   occurred_at=at(2))
        assert rules(checker, ev) == ["PA-014"]


class TestPA015UniqueIdentifiers:
    @pytest.mark.parametrize("item", ["RESIDENT_REG_NO", "PASSPORT_NO", "DRIVER_LICENSE_NO"])
    def test_fires_anywhere(self, checker, item):
        assert rules(checker, access(purpose="MEMBER_MANAGEMENT", data_items=[item])) == ["PA-002", "PA-015"]
        assert rules(checker, transfer(data_items=[item])) == ["PA-002", "PA-005", "PA-015"]
        assert "PA-015" in rules(checker, share(recipient_id="INSURER", data_items=[item], legal_basis="CONSENT"))

    def test_except_a_share_on_a_statute(self, checker):
        ev = share(recipient_id="POLICE", purpose="LAW_ENFORCEMENT", data_items=["RESIDENT_REG_NO"],
                   legal_basis="STATUTE")
        assert rules(checker, ev) == []
        ev = share(recipient_id="HOSPITAL", purpose="TREATMENT", data_items=["RESIDENT_REG_NO"],
                   legal_basis="EMERGENCY")
        assert rules(checker, ev) == ["PA-015"]


def test_consent_and_membership_events_never_violate(checker):
    assert checker.check(consent("PURPOSE", "ANYTHING")) == []
    assert checker.check(membership("WITHDRAWAL")) == []
