"""``privaudit broker | simulate | consume | run | db migrate | sql``: the pipeline's commands."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from privaudit import settings as cfg
from privaudit.bus import ClientName, LocalBroker, ensure_topics
from privaudit.consumers import ConsumerConfig
from privaudit.consumers.alerting import load_alerting
from privaudit.consumers.alerting.service import make_dispatcher
from privaudit.consumers.service import run_consumers
from privaudit.dashboards.server import serve_dashboard
from privaudit.policy import load_policy
from privaudit.producers.simulation import SimulationRun, run_simulation
from privaudit.producers.simulator import SimulationConfig, default_start
from privaudit.schemas import SchemaSet
from privaudit.schemas.codec import DEFAULT_MAX_RECORD_BYTES
from privaudit.signals import Companion, install_stop_signals
from privaudit.store import Retrying, Store, shown_dsn
from privaudit.store import migrations as mig
from privaudit.store.ddl import Target

from .options import (
    announce_dashboard,
    bootstrap_option,
    clickhouse_option,
    clock_skew_option,
    cluster_option,
    dashboard_names_option,
    data_dir_option,
    kafka_client_option,
    lang_option,
    ledger_key_option,
    ledger_signer,
    max_record_bytes_option,
    retention_option,
    search_key,
    startup_wait_option,
    store_dsn,
)
from .startup import open_dependencies
from .terminal import Output, UserError


@click.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Loopback port to listen on (0: a free one).")
@click.option("--partitions", type=int, default=6, show_default=True, help="Partitions of privaudit.events.")
def broker(port: int, partitions: int) -> None:
    """Run a local Kafka-protocol broker (Tansu, memory storage) on loopback until interrupted."""
    stop = threading.Event()
    install_stop_signals(stop)
    with LocalBroker(port=port) as local:
        ensure_topics(local.bootstrap, partitions)
        Output().line(f"broker listening on {local.bootstrap} (memory storage: a restart loses all topics); "
                      "Ctrl-C stops it")
        while not stop.wait(0.5):
            if local.process is None or local.process.poll() is not None:
                raise UserError("the broker exited")


@click.command()
@click.option("--events", type=int, default=50_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--rate", type=float, default=None, help="Events per second of wall time (default: as fast as possible).")
@click.option("--violation-rate", type=float, default=0.02, show_default=True, help="Share of events breaking a rule.")
@click.option("--start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]), default=None,
              help="occurred_at of the first event (default: the 1st of last month, 00:00 KST).")
@click.option("--out-jsonl", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the events in the contract's JSON form.")
@click.option("--produce/--no-produce", default=True, show_default=True, help="Send the events to Kafka.")
@click.option("--spool-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/spool"),
              show_default=True, help="The emitter's spool (used when the broker is away).")
@click.option("--flush-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="At the end, how long to wait for the broker to take what is not delivered yet; what it did "
                   "not take stays in the spool for the next run (exit status 1).")
@bootstrap_option
def simulate(events: int, seed: int, rate: float | None, violation_rate: float, start: datetime | None,
             out_jsonl: Path | None, produce: bool, spool_dir: Path, flush_timeout: float, bootstrap: str) -> None:
    """Play the services of the source document: a realistic, deterministic event stream."""
    result = simulate_events(events=events, seed=seed, rate=rate, violation_rate=violation_rate, start=start,
                             out_jsonl=out_jsonl, bootstrap=bootstrap if produce else None, spool_dir=spool_dir,
                             flush_timeout_s=flush_timeout)
    Output().note(f"simulated {result.produced:,} events in {result.elapsed_s} s"
                  + (f"; JSON in {out_jsonl}" if out_jsonl else "") + ("" if produce else " (not produced)"))


def simulate_events(*, events: int, seed: int, bootstrap: str | None, rate: float | None = None,
                    violation_rate: float = 0.02, start: datetime | None = None, out_jsonl: Path | None = None,
                    spool_dir: Path = Path("data/spool"), flush_timeout_s: float = 60.0) -> SimulationRun:
    """``simulate`` and the demo: the simulated services played into Kafka; exit 2 when the broker
    did not take every event (they wait in the spool)."""
    if start is not None and start.tzinfo is None:
        raise click.BadParameter("give a UTC offset, e.g. 2026-11-01T00:00:00+0900", param_hint="--start")
    config = SimulationConfig(events=events, seed=seed, violation_rate=violation_rate, start=start or default_start())
    run = run_simulation(config, load_policy(), bootstrap=bootstrap, spool_dir=spool_dir, out_jsonl=out_jsonl,
                         rate=rate, flush_timeout_s=flush_timeout_s, on_wait=Output().note)
    if not run.delivered:
        raise UserError(f"the broker at {bootstrap} did not take every event: they wait in the spool at {spool_dir} "
                        "and are sent on the next run with that spool")
    return run


def _consume_options(f: Any) -> Any:
    for option in reversed([
        bootstrap_option, clickhouse_option, data_dir_option, retention_option, startup_wait_option,
        click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Policy file (default: the shipped one)."),
        click.option("--group", default="privaudit-audit", show_default=True, help="Kafka consumer group."),
        kafka_client_option,
        click.option("--consumers", type=int, default=1, show_default=True, help="Consumer threads in this process."),
        click.option("--processes", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Run this many consumers in processes of their own, served the store by this one "
                          "(to check on more than one core; replaces --consumers). 0: threads here."),
        click.option("--partitions", type=int, default=6, show_default=True,
                     help="Partitions of privaudit.events (created if missing)."),
        click.option("--bulk-stage/--no-bulk-stage", default=True, show_default=True,
                     help="Run the PA-012 stage here (exactly one per deployment)."),
        click.option("--until-idle", type=float, default=None, metavar="SECONDS",
                     help="Exit once caught up and idle this long (default: run until SIGTERM)."),
        click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port."),
        click.option("--metrics-host", default="127.0.0.1", show_default=True,
                     help="Address the metrics endpoint binds (0.0.0.0 in a container)."),
        click.option("--max-records", type=click.IntRange(min=1), default=ConsumerConfig.max_records, show_default=True,
                     help="Records gathered into one batch (checked and loaded together; fewer, larger inserts). "
                          f"A batch is also closed {ConsumerConfig.linger_s * 1000:.0f} ms after its first record."),
        click.option("--max-subjects", type=click.IntRange(min=0), default=ConsumerConfig.max_subjects,
                     show_default=True,
                     help="Subjects whose consent and membership state is held per partition; the least recently "
                          "seen are dropped and reloaded from ClickHouse when they return (0: hold all)."),
        click.option("--confluent-ids", type=click.Path(dir_okay=False, path_type=Path), envvar=cfg.ENV_CONFLUENT_IDS,
                     default=None, show_envvar=True,
                     help="Schema ids of the Confluent wire format, as your registry assigned them: a JSON "
                          "file {\"<id>\": \"<type>@<version>\"} (default: the shipped table, unless "
                          "--schema-registry is given)."),
        click.option("--schema-registry", metavar="URL", envvar=cfg.ENV_SCHEMA_REGISTRY, default=None, show_envvar=True,
                     help="A Confluent-compatible schema registry, asked for the writer schema of each Confluent "
                          "schema id no table names (credentials as https://user:secret@host)."),
        clock_skew_option, max_record_bytes_option, ledger_key_option,
        click.option("--dedup-window", type=click.IntRange(min=0), default=ConsumerConfig.dedup_window,
                     show_default=True, metavar="OFFSETS",
                     help="How many offsets back each partition looks for an event id it stored: a repeat is "
                          "stored once, other content is a rewrite (PA-016). ~200 bytes of memory an offset."),
        click.option("--json", "json_mode", is_flag=True, help="Print the final summary as JSON."),
    ]):
        f = option(f)
    return f


@click.command()
@_consume_options
def consume(**options: Any) -> None:
    """Audit privaudit.events into ClickHouse: decode, check, load, publish violations, commit."""
    _consume(**options)


@click.command()
@_consume_options
@click.option("--alerting", "alerting_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              envvar=cfg.ENV_ALERTING, show_envvar=True, default=None,
              help="Run the alert dispatcher here, routing as this file says (see alerting.yaml).")
@click.option("--dashboard-port", type=int, default=None, help="Serve the dashboard here (0: a free port).")
@click.option("--dashboard-host", default="127.0.0.1", show_default=True,
              help=f"Address the dashboard binds; anything but loopback requires a token: {cfg.ENV_DASHBOARD_TOKEN} "
                   "(at least 32 characters), or one made at start and shown once.")
@dashboard_names_option
@lang_option
def run(alerting_path: Path | None, dashboard_port: int | None, dashboard_host: str, dashboard_names: tuple[str, ...],
        lang: str, **options: Any) -> None:
    """Everything that touches the store, in one process (the embedded store admits one):
    the consumers, the bulk stage, and with --alerting / --dashboard-port the alert dispatcher and
    the dashboard, as threads sharing one ClickHouse client."""
    _consume(**options, alerting_path=alerting_path, dashboard_port=dashboard_port, dashboard_host=dashboard_host,
             lang=lang,
             dashboard_names=dashboard_names)


def check_consumers(consumers: int, processes: int) -> None:
    """Consumers are threads here (``--consumers``) or processes of their own (``--processes``)."""
    if processes and consumers != 1:
        raise click.UsageError("give --consumers (threads in this process) or --processes (processes of their own), "
                               "not both")


def _consume(*, bootstrap: str, dsn: str | None, data_dir: str, retention_days: int | None, policy_path: Path | None,
             group: str, kafka_client: ClientName, consumers: int, processes: int, partitions: int, bulk_stage: bool,
             until_idle: float | None, metrics_port: int | None, metrics_host: str, max_records: int,
             max_subjects: int, json_mode: bool, startup_wait: float, confluent_ids: Path | None = None,
             schema_registry: str | None = None, clock_skew: float = cfg.DEFAULT_CLOCK_SKEW_S,
             max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, ledger_key: Path | None = None,
             dedup_window: int = ConsumerConfig.dedup_window, alerting_path: Path | None = None, lang: str = "ko",
             dashboard_port: int | None = None, dashboard_host: str = "127.0.0.1",
             dashboard_names: tuple[str, ...] = ()) -> None:
    if retention_days is not None:
        cfg.check_retention(retention_days)
    check_consumers(consumers, processes)
    policy = load_policy(policy_path)
    if confluent_ids is not None:
        SchemaSet(confluent_ids=confluent_ids)  # refused here, with its path, not in each consumer
    alerting = load_alerting(alerting_path) if alerting_path else None
    signer = ledger_signer(ledger_key, data_dir)
    stop = threading.Event()
    install_stop_signals(stop)
    store = open_dependencies(store_dsn(dsn, data_dir), bootstrap, stop=stop, wait_s=startup_wait,
                              retention_days=retention_days, partitions=partitions, schema_registry=schema_registry)
    companions: list[Companion] = []
    dispatcher = server = None
    try:
        consumers_done = threading.Event()
        if alerting is not None:
            # its history is retried while the store is unavailable, as the consumers' statements are
            dispatcher = make_dispatcher(alerting, bootstrap, Retrying(store, stop), client=kafka_client)
            companions.append(Companion(dispatcher.run, stop, name="alerts", stop=stop, idle_exit_s=until_idle,
                                        may_exit=consumers_done.is_set))
        if dashboard_port is not None:
            server = serve_dashboard(store, policy, host=dashboard_host, port=dashboard_port,
                                     token=os.environ.get(cfg.ENV_DASHBOARD_TOKEN) or None, names=dashboard_names,
                                     lang=lang, pseudonymize=search_key())
            announce_dashboard(server, lambda line: click.echo(line, err=True))
        for thread in companions:
            thread.start()
        config = ConsumerConfig(bootstrap=bootstrap, group=group, client=kafka_client,
                                max_records=max_records, max_subjects=max_subjects or None,
                                confluent_ids=str(confluent_ids) if confluent_ids else None,
                                schema_registry=schema_registry, clock_skew_s=clock_skew,
                                max_record_bytes=max_record_bytes, dedup_window=dedup_window,
                                ledger_key_pem=signer.pem)
        try:
            result = run_consumers(config, store, policy, consumers=consumers, processes=processes,
                                   partitions=partitions, bulk_stage=bulk_stage, idle_exit_s=until_idle,
                                   metrics_port=metrics_port, metrics_host=metrics_host, stop=stop)
        finally:
            consumers_done.set()
            if until_idle is None:
                stop.set()
            for thread in companions:
                thread.join()
        for thread in companions:
            thread.raise_error()
    finally:
        if server is not None:
            server.close()
        store.close()
    out = Output(json_mode)
    summary = result.as_dict()
    if dispatcher is not None:
        summary["alerts"] = dispatcher.totals.__dict__
    if json_mode:
        out.json(summary)
    else:
        out.line(f"consumed {summary['records']:,} records, loaded {summary['loaded_events']:,} events, "
                 f"{sum(summary['violations'].values()):,} violations, {summary['dlq']:,} to the DLQ "
                 f"in {summary['elapsed_s']} s")


@click.group()
def db() -> None:
    """The ClickHouse schema."""


@db.command()
@clickhouse_option
@data_dir_option
@retention_option
@cluster_option
@click.option("--print", "print_only", is_flag=True, help="Print the DDL instead of running it.")
def migrate(dsn: str | None, data_dir: str, retention_days: int | None, cluster: str | None, print_only: bool) -> None:
    """Create or update the privaudit database (versioned, idempotent)."""
    if print_only:
        for statement in mig.render(Target("privaudit", retention_days or cfg.MIN_RETENTION_DAYS, cluster)):
            click.echo(statement + ";\n")
        return
    store = Store.connect(store_dsn(dsn, data_dir), cluster=cluster)
    try:
        applied = store.migrate(retention_days)
        days = store.retention_days()
    finally:
        store.close()
    Output().line(f"{shown_dsn(store.dsn)}: " + (f"applied migration(s) {applied}" if applied else "up to date")
                  + f"; events and violations are kept {days} days")
