"""``privaudit alerts``: the alert dispatcher on its own (against a ClickHouse server, or an
embedded store no other process holds; with the embedded default, ``privaudit run --alerting``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import click

from privaudit.bus import ClientName
from privaudit.consumers.alerting import load_alerting
from privaudit.consumers.alerting.service import DEFAULT_GROUP, make_dispatcher
from privaudit.settings import ENV_ALERTING
from privaudit.signals import install_stop_signals
from privaudit.store import Retrying

from .options import (
    bootstrap_option,
    clickhouse_option,
    data_dir_option,
    kafka_client_option,
    startup_wait_option,
    store_dsn,
)
from .startup import open_dependencies
from .terminal import Output


@click.command()
@click.option("--config", "alerting_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              envvar=ENV_ALERTING, show_envvar=True, default="alerting.yaml", show_default=True,
              help="Routing file (sinks, routes, grouping).")
@bootstrap_option
@clickhouse_option
@data_dir_option
@startup_wait_option
@click.option("--group", default=DEFAULT_GROUP, show_default=True, help="Kafka consumer group.")
@kafka_client_option
@click.option("--until-idle", type=float, default=None, metavar="SECONDS",
              help="Exit once every alert is delivered and nothing came for this long.")
@click.option("--json", "json_mode", is_flag=True, help="Print the final summary as JSON.")
def alerts(alerting_path: Path, bootstrap: str, dsn: str | None, data_dir: str, startup_wait: float, group: str,
           kafka_client: ClientName, until_idle: float | None, json_mode: bool) -> None:
    """Notify on-call of violations: privaudit.violations to Alertmanager, webhooks, Slack, PagerDuty."""
    config = load_alerting(alerting_path)
    stop = threading.Event()
    install_stop_signals(stop)
    store = open_dependencies(store_dsn(dsn, data_dir), bootstrap, stop=stop, wait_s=startup_wait)
    try:
        # its history is retried while the store is unavailable, as the consumers' statements are
        dispatcher = make_dispatcher(config, bootstrap, Retrying(store, stop), client=kafka_client, group=group)
        totals = dispatcher.run(stop, idle_exit_s=until_idle)
    finally:
        store.close()
    print_alert_totals(Output(json_mode), totals.__dict__)


def print_alert_totals(out: Output, totals: dict[str, Any]) -> None:
    if out.json_mode:
        out.json(totals)
    else:
        out.line(f"{totals['violations']:,} violations ({totals['repeats']:,} repeats) in {totals['groups']:,} groups: "
                 f"{totals['delivered']:,} notifications delivered, {totals['rejected']:,} rejected, "
                 f"{totals['failed_attempts']:,} failed attempts retried")
