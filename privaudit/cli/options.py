"""Options several commands share, each with its environment variable (shown in ``--help``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import click

from privaudit import settings as cfg
from privaudit.dashboards.server import DashboardServer, token_link
from privaudit.evidence import Signer, load_signer
from privaudit.i18n import DEFAULT_LANGUAGE, LANGUAGES
from privaudit.producers.pseudonym import Pseudonymizer
from privaudit.schemas.codec import DEFAULT_MAX_RECORD_BYTES

KAFKA_CLIENTS = click.Choice(["kafka-python", "confluent"])


class Duration(click.ParamType[float, object]):
    """Seconds, or a number with a unit: 90s, 5m, 6h, 1d."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = cfg.parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds < 0:
            self.fail(f"must not be negative: {value!r}", param, ctx)
        return seconds


def store_dsn(dsn: str | None, data_dir: str) -> str:
    """``--clickhouse``, else the embedded store under ``--data-dir``."""
    return dsn or cfg.default_dsn(data_dir)


bootstrap_option = click.option("--bootstrap", envvar=cfg.ENV_BOOTSTRAP, default=cfg.DEFAULT_BOOTSTRAP,
                                show_default=True, help="Kafka bootstrap servers.", show_envvar=True)
clickhouse_option = click.option("--clickhouse", "dsn", envvar=cfg.ENV_CLICKHOUSE_DSN, default=None,
                                 help="ClickHouse DSN: chdb:///DIR (embedded) or http(s)://host:8123 "
                                      "[default: chdb://DATA_DIR/clickhouse].", show_envvar=True)
data_dir_option = click.option("--data-dir", envvar=cfg.ENV_DATA_DIR, default=cfg.DEFAULT_DATA_DIR, show_default=True,
                               help="Where the embedded store lives.", show_envvar=True)
retention_option = click.option("--retention-days", envvar=cfg.ENV_RETENTION_DAYS, type=int, default=None,
                                 help=f"Set the TTL of events and violations, in days (at least "
                                      f"{cfg.MIN_RETENTION_DAYS}) [default: keep the store's setting; "
                                      f"{cfg.MIN_RETENTION_DAYS} for a new store].", show_envvar=True)
startup_wait_option = click.option(
    "--startup-wait", type=click.FloatRange(min=0), envvar=cfg.ENV_STARTUP_WAIT, default=cfg.DEFAULT_STARTUP_WAIT_S,
    show_default=True, show_envvar=True, metavar="SECONDS",
    help="At start, how long to keep trying a ClickHouse server or broker (or a --schema-registry) that cannot "
         "be reached yet (0: fail at once). Once running, an outage is waited out however long it lasts.")
cluster_option = click.option("--cluster", envvar=cfg.ENV_CLUSTER, default=None,
                              help="Render DDL ON CLUSTER with Replicated + Distributed tables.", show_envvar=True)
kafka_client_option = click.option("--kafka-client", type=KAFKA_CLIENTS, default="kafka-python", show_default=True)
clock_skew_option = click.option(
    "--clock-skew", type=Duration(), envvar=cfg.ENV_CLOCK_SKEW, default=cfg.DEFAULT_CLOCK_SKEW_S, show_envvar=True,
    show_default="1d", metavar="DURATION",
    help="How far past the clock an event's occurred_at may be; a later event is refused as breaking the contract.")
max_record_bytes_option = click.option(
    "--max-record-bytes", type=click.IntRange(min=1024), envvar=cfg.ENV_MAX_RECORD_BYTES,
    default=DEFAULT_MAX_RECORD_BYTES, show_default=True, show_envvar=True,
    help="A larger record (or JSON line) is refused before it is decoded.")
ledger_key_option = click.option(
    "--ledger-key", "ledger_key", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help=f"The Ed25519 key (PEM) that signs the ledger's chain heads [default: {cfg.ENV_LEDGER_KEY} if set, else "
         "<data-dir>/ledger.key, made on first use with its public key beside it, ledger.pub].")


lang_option = click.option(
    "--lang", type=click.Choice(LANGUAGES), envvar=cfg.ENV_LANG, default=DEFAULT_LANGUAGE, show_default=True,
    show_envvar=True, help="The language of what a person reads (the console, the report): Korean or English.")


def search_key() -> Callable[[str], str] | None:
    """The services' pseudonymisation (``PRIVAUDIT_PSEUDONYM_KEY``), to find a member by phone
    number or e-mail address; None without the key (pseudonyms only)."""
    return Pseudonymizer.from_env() if os.environ.get(cfg.ENV_PSEUDONYM_KEY) else None


def ledger_signer(ledger_key: Path | None, data_dir: str) -> Signer:
    """The signing key: ``PRIVAUDIT_LEDGER_KEY``, else ``--ledger-key``, else ``<data-dir>/ledger.key``
    (created on first use, said at WARNING: the public key is for auditors, the private one must
    stay away from whoever administers the store)."""
    text = os.environ.get(cfg.ENV_LEDGER_KEY) or None
    path = ledger_key or Path(data_dir) / "ledger.key"
    made = text is None and ledger_key is None and not path.exists()
    signer = load_signer(text, path, create=ledger_key is None)
    if made:
        logging.getLogger("privaudit.evidence").warning(
            "made a ledger signing key at %s; its public key, for auditors (privaudit verify --public-key), is at %s. "
            "Keep the private key from anyone who administers the store.", path, path.with_suffix(".pub"))
    return signer


def _split_names(ctx: click.Context, param: click.Parameter, given: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for value in given for name in value.replace(",", " ").split())


dashboard_names_option = click.option(
    "--dashboard-name", "dashboard_names", multiple=True, envvar=cfg.ENV_DASHBOARD_HOSTS, show_envvar=True,
    metavar="HOST", callback=_split_names,
    help="A name the dashboard is reached by besides its address (repeatable; the variable: space-separated). "
         "A request for any other Host is refused (DNS rebinding).")


def announce_dashboard(server: DashboardServer, echo: Callable[[str], None]) -> None:
    """Say where the dashboard is; a token made for this run is said here, once."""
    echo(f"dashboard: {server.url}  (Ctrl-C to stop)")
    if server.token_made:
        echo(f"a token was made for this run, shown once: {token_link(server)}")

