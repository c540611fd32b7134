"""Options several commands share, each with its environment variable (shown in ``--help``)."""

from __future__ import annotations

import click

from privaudit import settings as cfg

KAFKA_CLIENTS = click.Choice(["kafka-python", "confluent"])


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
