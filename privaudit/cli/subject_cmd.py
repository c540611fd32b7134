"""``privaudit subject ID [--month YYYY-MM] [--json]``: one member's processing history.

What was done with one member's personal data in a period: who accessed it (staff apart from
systems), for what purpose, which items; what went to third parties and to processors; their
consents and membership changes; the violations concerning them. The console's member page
(``#/subject/<id>``) shows the same; it answers a member's request to see their data (PIPA Art. 35).

ID is a pseudonym (``p-`` and 32 hex digits), or a phone number or an e-mail address, which is
pseudonymised here with the services' key (``PRIVAUDIT_PSEUDONYM_KEY``) and never printed, logged
or stored.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from privaudit import settings as cfg
from privaudit.dashboards.client import get_through_server
from privaudit.dashboards.queries import FIRST_DAY, LAST_DAY, PSEUDONYM, Filters, Queries
from privaudit.dashboards.report import Month
from privaudit.dashboards.words import named, names
from privaudit.errors import StoreBusy
from privaudit.i18n import N_, translator
from privaudit.policy import load_policy
from privaudit.store import Store, shown_dsn

from .options import clickhouse_option, data_dir_option, lang_option, search_key, store_dsn
from .terminal import Output, UserError

#: the member page's sections, as the console titles them
SECTIONS = (("staff", N_("Accessed by staff")), ("systems", N_("Processed by systems")),
            ("provided", N_("Provided to third parties and entrusted to processors")),
            ("consents", N_("Consents and membership")), ("violations", N_("Violations concerning this member")))
#: columns whose values are codes, and the names that read them
CODED = {"items": "item", "action": "action", "purpose": "purpose", "type": "type", "actor_type": "actor_type",
         "severity": "severity", "change": "change", "scope": "scope", "counterparty": "recipient"}


@click.command()
@click.argument("member")
@click.option("--month", default=None, help="Only this month, YYYY-MM (KST) [default: every stored record].")
@click.option("--json", "json_mode", is_flag=True, help="The member's page as one JSON object.")
@lang_option
@clickhouse_option
@data_dir_option
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Policy file, for the names of items and purposes (default: the shipped one).")
def subject(member: str, month: str | None, json_mode: bool, lang: str, dsn: str | None, data_dir: str,
            policy_path: Path | None) -> None:
    """Show what was done with one member's personal data (MEMBER: a pseudonym, a phone number or an
    e-mail address)."""
    subject_id = _pseudonym(member)
    period = Month.parse(month) if month else None
    first = period.start.date() if period else FIRST_DAY
    last = (period.end.date().toordinal() - 1) if period else LAST_DAY.toordinal()
    args = {"from": first.isoformat(), "to": date.fromordinal(last).isoformat()}
    policy = load_policy(policy_path)
    target = store_dsn(dsn, data_dir)
    if target.startswith("chdb://") and not Path(target.removeprefix("chdb://")).exists():
        raise UserError(f"there is no store at {shown_dsn(target)}: check --data-dir / --clickhouse")
    try:
        store = Store.connect(target)
    except StoreBusy:
        page = get_through_server(target, f"subject/{subject_id}", {**args, "lang": lang},
                                  token=os.environ.get(cfg.ENV_DASHBOARD_TOKEN) or None)
    else:
        try:
            page = Queries(store, policy).subject(subject_id, Filters.parse(args, datetime.min, datetime.min), lang)
        finally:
            store.close()
    if json_mode:
        Output(json_mode=True).json(page)
        return
    _show(page, period, lang, names(policy, lang))


def _pseudonym(member: str) -> str:
    member = member.strip()
    if PSEUDONYM.fullmatch(member):
        return member
    pseudonymize = search_key()
    if pseudonymize is None:
        raise UserError(f"MEMBER is not a pseudonym (p- and 32 hex digits); to look a member up by phone number or "
                        f"e-mail address, set {cfg.ENV_PSEUDONYM_KEY} to the services' pseudonymisation key")
    return pseudonymize(member)


def _show(page: dict[str, Any], period: Month | None, lang: str, words: dict[str, dict[str, str]]) -> None:
    _ = translator(lang)
    out = Output()
    column = words["column"]
    summary = dict(zip(page["summary"]["columns"], page["summary"]["rows"][0], strict=True))
    span = str(period) if period else _("every stored record")
    out.line(f"{_('Processing history of a member')}: {page['subject_id']} ({span}, KST)")
    out.line("  ".join(f"{column.get(k, k)} {summary[k]:,}" for k in ("events", "by_staff", "by_systems", "provided",
                                                                        "violations")))
    for key, title in SECTIONS:
        section = page[key]
        cols = section["columns"]
        rows = [[_cell(c, v, words) for c, v in zip(cols, row, strict=True)] for row in section["rows"]]
        out.table(f"{_(title)} ({len(rows):,})", [column.get(c, c) for c in cols], rows)


def _cell(column: str, value: Any, words: dict[str, dict[str, str]]) -> Any:
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T" and value[4:5] == "-":
        return value[:19].replace("T", " ")  # ISO in KST: 2026-11-01 03:16:25
    field = CODED.get(column)
    if field and isinstance(value, str):
        if field == "recipient" and value not in words.get("recipient", {}):  # a counterparty: else a processor
            field = "processor"
        return named(field, value, words)
    if column == "rule" and value:
        return f"{value} {words['rule'].get(value, '')}"
    return value
