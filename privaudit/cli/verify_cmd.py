"""``privaudit verify``: is the stored record whole and unaltered? (docs/evidence.md)"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from privaudit import settings as cfg
from privaudit.bus import Message, make_producer, publish
from privaudit.errors import ConfigError
from privaudit.evidence import Verifier, load_signer
from privaudit.evidence.verify import DEFAULT_GRACE_S, Report, Verification
from privaudit.settings import MIN_RETENTION_DAYS, TOPIC_VIOLATIONS
from privaudit.signals import install_stop_signals
from privaudit.store import Statements, Store

from .options import Duration, clickhouse_option, data_dir_option, store_dsn
from .terminal import Output

KST = ZoneInfo("Asia/Seoul")


@click.command()
@clickhouse_option
@data_dir_option
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Check the ranges with events on or after this day (KST) [default: all].")
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="... and on or before this day (KST).")
@click.option("--public-key", default=None, metavar="FILE|HEX",
              help="The ledger's public key (PEM file, PEM text or 64 hex characters) [default: the signing key's "
                   f"own: {cfg.ENV_LEDGER_KEY}, else <data-dir>/ledger.pub]. An auditor passes the key they were "
                   "given.")
@click.option("--grace", type=Duration(), default=DEFAULT_GRACE_S, show_default="15m", metavar="DURATION",
              help="A hole in an emitter's sequence numbers is a finding once its later records run this far past "
                   "it (until then they may be on their way).")
@click.option("--publish-to", "publish_to", default=None, metavar="BOOTSTRAP",
              help="Also send each finding to privaudit.violations on this broker (PA-017, or PA-018 for an "
                   "emitter's gap), where the alert dispatcher pages on-call; waited for while the broker is away.")
@click.option("--json", "json_mode", is_flag=True, help="Print the result as JSON.")
def verify(dsn: str | None, data_dir: str, since: datetime | None, until: datetime | None, public_key: str | None,
           grace: float, publish_to: str | None, json_mode: bool) -> None:
    """Recompute every partition's hash chain from the stored rows and check it against the signed
    heads, the offsets against the ledger, and event ids stored twice. Exit 0 when whole, 1 with one
    line per finding."""
    verifier = _verifier(public_key, data_dir)
    start = datetime.combine(since.date(), time(), KST) if since else None
    end = datetime.combine(until.date() + timedelta(days=1), time(), KST) if until else None
    out = Output(json_mode)
    store = Store.connect(store_dsn(dsn, data_dir))
    try:
        store.migrate()
        report = verify_store(store, verifier, since=start, until=end, period=_period(since, until),
                              progress=None if json_mode else out.note, grace_s=grace)
    finally:
        store.close()
    if publish_to and report.findings:
        publish_findings(report, publish_to)
    if json_mode:
        out.json(report.as_dict())
    else:
        for finding in report.findings:
            out.line(finding.line())
        if report.open_holes:
            out.note(f"{report.open_holes} hole(s) in emitters' numbers within the grace period (may be on their way)")
        if report.unsequenced:
            out.note(f"{report.unsequenced:,} record(s) carried no emitter sequence (other producers)")
        if report.beyond_retention:
            out.note(f"{report.beyond_retention} range(s) past the retention period: their heads were checked, "
                     "their rows not (the TTL may have removed them)")
        out.line(report.summary() + f" (key {report.key_id}, {report.elapsed_s:.1f} s)")
    if not report.ok:
        raise SystemExit(1)


def verify_store(store: Store, verifier: Verifier, *, since: datetime | None = None,
                 until: datetime | None = None, period: str = "",
                 progress: Callable[[str], None] | None = None, grace_s: float = DEFAULT_GRACE_S) -> Report:
    """Verify and record the run in ``verifications`` (the demo calls this too)."""
    check = Verification(store, verifier, retention_days=store.retention_days() or MIN_RETENTION_DAYS,
                         since=since, until=until, progress=progress, grace_s=grace_s)
    report = check.run()
    _record(store, report, period)
    return report


def publish_findings(report: Report, bootstrap: str) -> None:
    """Each finding to ``privaudit.violations`` (flushed; a broker that is away is waited for)."""
    stop = threading.Event()
    install_stop_signals(stop)
    producer = make_producer("kafka-python", bootstrap)
    try:
        at = datetime.now(UTC)
        messages: list[Message] = [(TOPIC_VIOLATIONS, value, key, None)
                                   for key, value in (f.violation(at) for f in report.findings)]
        publish(producer, messages, stop=stop, what=f"verify: publishing {len(messages)} finding(s)")
    finally:
        producer.close()


def _period(since: datetime | None, until: datetime | None) -> str:
    if since is None and until is None:
        return ""
    return f"{since.date() if since else ''}..{until.date() if until else ''}"


def _verifier(public_key: str | None, data_dir: str) -> Verifier:
    if public_key:
        return Verifier.load(public_key)
    text = os.environ.get(cfg.ENV_LEDGER_KEY) or None
    if text:
        return Verifier(load_signer(text, None).public, f"the public half of {cfg.ENV_LEDGER_KEY}")
    pub = Path(data_dir) / "ledger.pub"
    if pub.is_file():
        return Verifier.load(str(pub))
    raise ConfigError(f"no public key to check the ledger's signatures with: give --public-key (or {pub})")


def _record(store: Statements, report: Report, period: str) -> None:
    """The run in ``verifications``, for the dashboard and the monthly report."""
    store.insert("verifications",
                 [[datetime.now(KST)], [report.ok], [report.events], [len(report.partitions)], [sorted(report.months)],
                  [period], [[f.line() for f in report.findings]], [report.key_id]],
                 ["verified_at", "ok", "events", "partitions", "months", "period", "findings", "key_id"])


__all__ = ["verify"]
