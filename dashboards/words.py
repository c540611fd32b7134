"""The console's words for codes: what a person reads for ``DOWNLOAD``, ``STAFF``, ``share`` or a
column named ``with_reason``, in either language (:mod:`privaudit.i18n`).

Two sources: the product's own words (the codes of the event contract, the column names of the
panels) are in the message catalogue; the names the policy owns (items, purposes, recipients,
processors) come from the policy file, which gives each in Korean and in English.
"""

from __future__ import annotations

import json
from typing import Any

from privaudit.checker.rules import RULES
from privaudit.i18n import N_, gettext
from privaudit.policy import Policy

#: The event contract's codes, by field.
CODES: dict[str, dict[str, str]] = {
    "type": {"access": N_("access"), "share": N_("third-party provision"), "transfer": N_("transfer to a processor"),
             "consent": N_("consent"), "membership": N_("membership")},
    # 수행업무: what was done
    "action": {"COLLECT": N_("collect"), "VIEW": N_("view"), "UPDATE": N_("update"), "DELETE": N_("delete"),
               "DOWNLOAD": N_("download"), "EXPORT": N_("export"), "PRINT": N_("print"), "USE": N_("use")},
    "actor_type": {"STAFF": N_("staff"), "SYSTEM": N_("system"), "PROCESSOR": N_("processor's staff")},
    "severity": {"critical": N_("critical"), "high": N_("high"), "medium": N_("medium")},
    "change": {"SIGNUP": N_("sign-up"), "WITHDRAWAL": N_("withdrawal"), "CONTRACT_END": N_("contract end"),
               "GRANTED": N_("consent granted"), "WITHDRAWN": N_("consent withdrawn"),
               "granted": N_("consent granted"), "withdrawn": N_("consent withdrawn")},
    "scope": {"PURPOSE": N_("purpose"), "THIRD_PARTY": N_("third party"), "CROSS_BORDER": N_("cross-border"),
              "SENSITIVE": N_("sensitive information")},
    # the legal basis of a provision (PIPA Art. 17(1), 15(1))
    "basis": {"CONSENT": N_("the member's consent"), "CONTRACT": N_("performance of a contract"),
              "STATUTE": N_("a statute"), "EMERGENCY": N_("an emergency (life, body, property)")},
    "kind": {"contract": N_("breaks the contract"), "decode": N_("cannot be decoded"),
             "policy": N_("no policy in force")},
}

#: Column names of the panels, the subject view and the report, as a person reads them.
COLUMNS: dict[str, str] = {
    "events": N_("events"), "subjects": N_("members"), "violations": N_("violations"), "critical": N_("critical"),
    "label": N_("what"), "value": N_("count"), "rule_severity": N_("severity"), "rule": N_("rule"),
    "title": N_("rule title"), "severity": N_("severity"), "service": N_("service"), "subject_id": N_("member"),
    "actor_id": N_("actor"), "actor": N_("actor"), "actor_type": N_("actor type"), "action": N_("task"),
    "purpose": N_("purpose"), "purpose_text": N_("purpose (policy's words)"), "items": N_("items"),
    "record_count": N_("records"), "records": N_("records"), "reason": N_("reason"), "event_id": N_("event"),
    "occurred_at": N_("time (KST)"), "recipient": N_("recipient"), "processor": N_("processor"),
    "counterparty": N_("recipient or processor"), "basis": N_("legal basis"), "country": N_("country"),
    "task": N_("entrusted task"), "provisions": N_("provisions"), "transfers": N_("transfers"),
    "access_records": N_("access records"), "incomplete": N_("incomplete"), "completeness": N_("completeness"),
    "with_reason": N_("with a reason"), "accesses": N_("accesses"), "message": N_("message"),
    "day": N_("day (KST)"), "kind": N_("kind"), "example_reason": N_("example reason"),
    "partition": N_("partition"), "loaded_to": N_("loaded to offset"), "end_seen": N_("end seen"),
    "lag": N_("lag"), "as_of": N_("as of"), "verified_at": N_("verified at"), "result": N_("result"),
    "finding_count": N_("findings"), "first_findings": N_("first findings"), "key_id": N_("signing key"),
    "emitter": N_("emitter"), "first_seq": N_("first number"), "last_seq": N_("last number"),
    "last_event": N_("last event"), "gap": N_("gap"), "party": N_("party"), "window_start": N_("window from"),
    "count": N_("count"), "sink": N_("sink"), "status": N_("status"), "attempts": N_("attempts"),
    "notified_at": N_("notified at"), "hour_start": N_("hour (KST)"), "bulk_events": N_("bulk accesses"),
    "kind_of_actor": N_("actor type"), "first_at": N_("first"), "last_at": N_("last"),
    "by_staff": N_("accesses by staff"),
    "by_systems": N_("accesses by systems"), "provided": N_("provided or entrusted"), "change": N_("change"),
    "scope": N_("scope"), "target": N_("to whom"), "purposes": N_("purposes"), "type": N_("type"),
    "law": N_("law"), "remedy": N_("what to do"), "policy_version": N_("policy version"),
    "detected_at": N_("detected at"), "alerted": N_("alerted"), "not_alerted": N_("not alerted"),
    "rows_touched": N_("rows touched"), "source_ip": N_("source address"), "through_offset": N_("through offset"),
    "chain_head": N_("chain head"), "signed_by": N_("signed by"), "ed25519_signature": N_("Ed25519 signature"),
    "confirmed": N_("confirmed"), "members": N_("members"), "staff_records": N_("records by staff"),
    "staff": N_("staff members"), "system_records": N_("records by systems"), "systems": N_("system accounts"),
    "checked_version": N_("policy version checked"), "kafka_topic": N_("Kafka topic"),
    "kafka_partition": N_("Kafka partition"), "kafka_offset": N_("Kafka offset"), "loaded_at": N_("loaded at"),
    "kafka_incarnation": N_("topic's life"), "kafka_position": N_("position"), "content_hash": N_("content hash"),
    "verdicts_hash": N_("verdicts hash"), "data_items": N_("items"), "consent_id": N_("consent"),
    "from_processor_id": N_("re-entrusted by"), "recipient_id": N_("recipient"), "processor_id": N_("processor"),
    "legal_basis": N_("legal basis"), "granted": N_("granted"),
    "topic": N_("topic"), "life": N_("life"), "downloads": N_("downloads"), "without_reason": N_("without a reason"),
}


def names(policy: Policy | None, lang: str) -> dict[str, dict[str, str]]:
    """What each code reads as in ``lang``: the policy's names and the catalogue's words."""
    ko = lang == "ko"
    out: dict[str, dict[str, str]] = {field: {code: gettext(text, lang) for code, text in codes.items()}
                                      for field, codes in CODES.items()}
    out["column"] = {code: gettext(text, lang) for code, text in COLUMNS.items()}
    out["rule"] = {rid: gettext(r.title, lang) for rid, r in RULES.items()}
    if policy is not None:
        doc = policy.document
        out["item"] = {i.code: i.name_ko if ko else i.name_en for i in doc.items}
        out["purpose"], out["recipient"], out["processor"] = {}, {}, {}
        for version in doc.versions:  # a later version's words win
            out["purpose"].update({p.code: p.text_ko if ko else p.text_en for p in version.purposes})
            out["recipient"].update({r.id: r.name_ko if ko else r.name_en for r in version.recipients})
            out["processor"].update({p.id: p.name_ko if ko else p.name_en for p in version.processors})
    return out


def rule_text(rule_id: str, lang: str) -> dict[str, Any]:
    """A rule's id, severity, title, law and what to do about it, in ``lang``."""
    rule = RULES.get(rule_id)
    if rule is None:
        return {"id": rule_id, "severity": "", "title": "", "law": "", "remedy": ""}
    return {"id": rule.id, "severity": rule.severity, "title": gettext(rule.title, lang),
            "law": gettext(rule.law, lang), "remedy": gettext(rule.remedy, lang)}


#: Parameters of rule messages whose values are codes, and the names that read them.
ARG_FIELDS = {"action": "action", "change": "change", "purpose": "purpose", "basis": "basis",
              "recipient": "recipient", "processor": "processor", "parent": "processor", "items": "item"}


def say(message: str, template: str, args_json: str, lang: str, words: dict[str, dict[str, str]]) -> str:
    """A stored verdict's message in ``lang``: its template from the catalogue, with the codes among
    its parameters named (``다운로드 (DOWNLOAD)``). The stored English line for English, and for a
    verdict stored before its template was (migration 8), or whose parameters do not fit."""
    if lang == "en" or not template:
        return message
    try:
        args = json.loads(args_json) if args_json else {}
        given = {name: named(ARG_FIELDS.get(name, ""), str(value), words) for name, value in args.items()}
        return gettext(template, lang).format(**given)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return message


def named(field: str, value: str, words: dict[str, dict[str, str]]) -> str:
    """``value``, a code of ``field``, as a person reads it: ``다운로드 (DOWNLOAD)``; items (``"A, B"``)
    each so; a code without a name as it is."""
    if not field or not value:
        return value
    known = words.get(field, {})
    codes = value.split(", ") if field == "item" else [value]
    return ", ".join(f"{known[c]} ({c})" if known.get(c) and known[c] != c else c for c in codes)


def said(columns: list[str], rows: list[list[Any]], lang: str, words: dict[str, dict[str, str]]) -> list[str]:
    """Rows with ``message``, ``message_template`` and ``message_args`` columns: the message said in
    ``lang``, the other two dropped (in place); the columns left."""
    if "message_template" not in columns or "message_args" not in columns:
        return columns
    m, t, a = columns.index("message"), columns.index("message_template"), columns.index("message_args")
    for row in rows:
        row[m] = say(row[m], row[t], row[a], lang, words)
        del row[max(t, a)], row[min(t, a)]
    return [c for c in columns if c not in ("message_template", "message_args")]
