"""``privaudit demo``: the whole pipeline on one machine, with a summary and a self-check.

A local broker on a free port, the embedded ClickHouse under ``DATA_DIR`` (wiped first: it is the
demo's own), the simulated services producing N events, the audit consumer until it is caught up,
and at the end: events by type, violations by rule, DLQ count, where the data is and how to query it;
then the dashboard on the demo's data, until Ctrl-C (``--no-dashboard`` to skip; off with ``--json``).
With ``--alerting FILE`` the alert dispatcher runs alongside the consumer.
The summary also says whether the violations in ClickHouse equal, event for event and rule for rule,
what ``privaudit check`` finds in the same events (written to ``DATA_DIR/events.jsonl``).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from privaudit.bus import ClientName, LocalBroker, ensure_topics
from privaudit.checker import Checker
from privaudit.checker.lines import check_lines
from privaudit.consumers import ConsumerConfig
from privaudit.consumers.alerting import load_alerting
from privaudit.consumers.alerting.service import make_dispatcher
from privaudit.consumers.service import run_consumers
from privaudit.dashboards.server import serve_dashboard
from privaudit.errors import ConfigError
from privaudit.evidence import Verifier, load_signer
from privaudit.policy import Policy, load_policy
from privaudit.producers.pseudonym import Pseudonymizer
from privaudit.producers.simulator import SIM_KEY, member_phone
from privaudit.settings import default_dsn
from privaudit.signals import Companion, install_stop_signals
from privaudit.store import Store

from .options import kafka_client_option, lang_option
from .pipeline_cmd import check_consumers, simulate_events
from .terminal import Output
from .verify_cmd import verify_store


@click.command()
@click.option("--events", type=int, default=50_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/demo"),
              show_default=True, help="Wiped and refilled: the demo's own directory.")
@click.option("--partitions", type=int, default=6, show_default=True)
@click.option("--consumers", type=int, default=1, show_default=True, help="Consumer threads in one group.")
@click.option("--processes", type=click.IntRange(min=0), default=0, show_default=True,
              help="Consumers in processes of their own instead of threads (to check on more than one core).")
@kafka_client_option
@click.option("--alerting", "alerting_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Also run the alert dispatcher, routing as this file says (e.g. to your Alertmanager).")
@click.option("--dashboard/--no-dashboard", "serve", default=None,
              help="At the end, serve the dashboard on the demo's data until Ctrl-C [default: on, off with --json].")
@click.option("--dashboard-port", type=int, default=8750, show_default=True,
              help="Port of the dashboard (0: a free one).")
@click.option("--json", "json_mode", is_flag=True, help="Print the summary as JSON.")
@lang_option
def demo(events: int, seed: int, data_dir: Path, partitions: int, consumers: int, processes: int,
         kafka_client: ClientName, alerting_path: Path | None, serve: bool | None, dashboard_port: int,
         json_mode: bool, lang: str) -> None:
    """Run the whole pipeline locally on simulated services, summarise what it found, and serve
    the dashboard on it."""
    check_consumers(consumers, processes)
    out = Output(json_mode)
    serve = (not json_mode) if serve is None else serve
    alerting = load_alerting(alerting_path) if alerting_path else None
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    signer = load_signer(None, data_dir / "ledger.key", create=True)  # the demo's own, made afresh
    began = time.monotonic()
    policy = load_policy()
    stop = threading.Event()
    install_stop_signals(stop)
    with LocalBroker(log=data_dir / "broker.log") as broker:
        out.note(f"broker on {broker.bootstrap}; store in {data_dir / 'clickhouse'}")
        ensure_topics(broker.bootstrap, partitions)
        jsonl = data_dir / "events.jsonl"
        out.note(f"simulating {events:,} events (seed {seed}) ...")
        produced = simulate_events(events=events, seed=seed, bootstrap=broker.bootstrap, out_jsonl=jsonl,
                                   spool_dir=data_dir / "spool").produced
        store = Store.connect(default_dsn(data_dir))
        alerts: Companion | None = None
        try:
            store.migrate()
            consumers_done, alerts_stop = threading.Event(), threading.Event()
            if alerting is not None:
                dispatcher = make_dispatcher(alerting, broker.bootstrap, store, client=kafka_client)
                alerts = Companion(dispatcher.run, stop, name="alerts", stop=alerts_stop,
                                   idle_exit_s=None if serve else 2.0, may_exit=consumers_done.is_set)
                alerts.start()
            out.note("consuming until caught up ...")
            try:
                result = run_consumers(
                    ConsumerConfig(bootstrap=broker.bootstrap, client=kafka_client, ledger_key_pem=signer.pem),
                    store, policy, consumers=consumers, processes=processes, partitions=partitions, idle_exit_s=3.0,
                    stop=stop,
                )
            finally:
                consumers_done.set()
            if alerts is not None and not serve:
                out.note("delivering alerts (a sink that is down is retried until it is back; Ctrl-C stops) ...")
                while alerts.is_alive() and not stop.is_set():
                    alerts.join(1.0)
                alerts_stop.set()
                alerts.join()
                alerts.raise_error()
            summary = _summary(store, result.as_dict()["dlq"])
            summary["matches_check"] = _matches_check(store, jsonl, policy)
            out.note("verifying the hash chains against the signed heads ...")
            verified = verify_store(store, Verifier(signer.public, f"{data_dir / 'ledger.pub'}"))
            summary["verify"] = {"ok": verified.ok, "summary": verified.summary(),
                                 "findings": [f.line() for f in verified.findings]}
            summary.update(produced=produced, elapsed_s=round(time.monotonic() - began, 2), data_dir=str(data_dir))
            if alerting is not None:
                summary["alerts"] = dispatcher.totals.__dict__
            _report(out, summary, jsonl, data_dir)
            if serve and not stop.is_set():
                # the simulated services' key: members are found by their (made-up) phone numbers
                members = Pseudonymizer(SIM_KEY)
                try:
                    server = serve_dashboard(store, policy, port=dashboard_port, lang=lang, pseudonymize=members)
                except ConfigError as exc:  # the port is taken: any free one will do for a demo
                    out.note(f"{exc}; using a free port instead")
                    server = serve_dashboard(store, policy, port=0, lang=lang, pseudonymize=members)
                out.line(f"\nDashboard: {server.url}  (serving the demo's data; Ctrl-C to stop)")
                try:
                    stop.wait()
                finally:
                    server.close()
                if alerts is not None:
                    alerts_stop.set()
                    alerts.join()
                    alerts.raise_error()
                    t = dispatcher.totals
                    out.note(f"alerts at exit: {t.groups:,} groups, {t.delivered:,} notifications delivered, "
                             f"{t.rejected:,} rejected, {t.failed_attempts:,} failed attempts retried")
        finally:
            alerts_stop.set()
            if alerts is not None:
                alerts.join()
            store.close()
    if alerts is not None:
        alerts.raise_error()  # a dispatcher that failed stopped the demo: say why
    if not summary["matches_check"] or not summary["verify"]["ok"]:
        raise SystemExit(1)


def _report(out: Output, summary: dict[str, Any], jsonl: Path, data_dir: Path) -> None:
    if out.json_mode:
        out.json(summary)
        return
    out.table("Events loaded, by type", ("type", "events"), sorted(summary["events_by_type"].items()))
    out.table("Violations, by rule", ("rule", "violations"), sorted(summary["violations"].items()))
    out.line(
        f"produced {summary['produced']:,} · loaded {summary['loaded_events']:,} · "
        f"violations {sum(summary['violations'].values()):,} · DLQ {summary['dlq']} · {summary['elapsed_s']} s · "
        f"same verdicts as `privaudit check`: {'yes' if summary['matches_check'] else 'NO'}"
    )
    for finding in summary["verify"]["findings"]:
        out.line(f"verify: {finding}")
    out.line(f"privaudit verify: {summary['verify']['summary']}")
    if "alerts" in summary:
        a = summary["alerts"]
        out.line(f"alerts so far: {a['groups']:,} groups from {a['violations']:,} violations; "
                 f"{a['delivered']:,} notifications "
                 f"delivered, {a['rejected']:,} rejected, {a['failed_attempts']:,} failed attempts retried")
    prog = _invoked_as()
    out.line(f"\nThe data is in {data_dir}/clickhouse (embedded ClickHouse); the events as JSON in {jsonl}. Query it:")
    query = "SELECT rule, count() FROM privaudit.violations GROUP BY rule ORDER BY rule"
    out.line(f"  {prog} sql --data-dir {data_dir} \"{query}\"")
    out.line(f"  {prog} check --table {jsonl}")
    out.line(f"  {prog} report --data-dir {data_dir} --month {summary.get('first_month', 'YYYY-MM')} --out report.html")
    out.line(f"  {prog} verify --data-dir {data_dir} --public-key {data_dir}/ledger.pub")
    out.line(f"  PRIVAUDIT_PSEUDONYM_KEY={SIM_KEY.decode()} {prog} subject --data-dir {data_dir} {member_phone(42)}")
    out.line("(the simulated services know a member by a made-up mobile number, 010-0000-0001 and on; the console's "
             "search finds them by it)")


def _invoked_as() -> str:
    """How the user ran us (``.venv/bin/privaudit`` after ``make demo``), for copy-paste hints."""
    argv0 = sys.argv[0]
    if "/" in argv0 and Path(argv0).name == "privaudit":
        return os.path.relpath(argv0)
    return "privaudit"


def _summary(store: Store, dlq: int) -> dict[str, Any]:
    db = store.database
    _, by_type = store.query(f"SELECT type, count() FROM {db}.events GROUP BY type")
    _, by_rule = store.query(f"SELECT rule, count() FROM {db}.violations GROUP BY rule")
    _, first = store.query(f"SELECT formatDateTime(min(occurred_at), '%Y-%m', 'Asia/Seoul') FROM {db}.events")
    return {
        "first_month": first[0][0] if first else "",
        "loaded_events": sum(n for _, n in by_type),
        "events_by_type": {t: n for t, n in by_type},
        "violations": dict(sorted((r, n) for r, n in by_rule)),
        "dlq": dlq,
    }


def _matches_check(store: Store, jsonl: Path, policy: Policy) -> bool:
    """The stored violations, event for event and rule for rule, against `privaudit check`'s."""
    with open(jsonl, encoding="utf-8") as f:
        expected = {
            (r.event.event_id, v.rule)
            for r in check_lines(Checker(policy), f) if r.event is not None for v in r.violations
        }
    _, rows = store.query(f"SELECT toString(event_id), rule FROM {store.database}.violations")
    stored = [(e, r) for e, r in rows]
    return len(stored) == len(set(stored)) and set(stored) == expected
