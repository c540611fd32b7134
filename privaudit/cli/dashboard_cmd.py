"""``privaudit dashboard``: the built-in web UI on its own (against a ClickHouse server, or an
embedded store no other process holds; alongside a running pipeline: ``privaudit run
--dashboard-port``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import click

from privaudit.dashboards.server import serve_dashboard
from privaudit.policy import load_policy
from privaudit.settings import ENV_DASHBOARD_TOKEN
from privaudit.signals import install_stop_signals

from .options import (
    announce_dashboard,
    clickhouse_option,
    dashboard_names_option,
    data_dir_option,
    lang_option,
    search_key,
    startup_wait_option,
    store_dsn,
)
from .startup import open_dependencies
from .terminal import Output


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help=f"Address to bind; anything but loopback requires a token: {ENV_DASHBOARD_TOKEN} (at least 32 "
                   "characters), or one made at start and shown once.")
@click.option("--port", type=int, default=8750, show_default=True, help="Port (0: a free one).")
@dashboard_names_option
@clickhouse_option
@data_dir_option
@startup_wait_option
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Policy file, for the names of items, purposes, recipients and processors (default: the "
                   "shipped one).")
@lang_option
def dashboard(host: str, port: int, dashboard_names: tuple[str, ...], dsn: str | None, data_dir: str,
              startup_wait: float, policy_path: Path | None, lang: str) -> None:
    """Serve the compliance console until interrupted (Korean by default; a page can ask for
    English with ?lang=en). With PRIVAUDIT_PSEUDONYM_KEY set to the services' key, members can be
    looked up by phone number or e-mail address."""
    policy = load_policy(policy_path)
    stop = threading.Event()
    install_stop_signals(stop)
    store = open_dependencies(store_dsn(dsn, data_dir), None, stop=stop, wait_s=startup_wait)
    try:
        server = serve_dashboard(store, policy, host=host, port=port, token=os.environ.get(ENV_DASHBOARD_TOKEN) or None,
                                 names=dashboard_names, lang=lang, pseudonymize=search_key())
        announce_dashboard(server, Output().line)
        try:
            stop.wait()
        finally:
            server.close()
    finally:
        store.close()

