"""Configuration: every environment variable in one place, parsed once at the entry point.

The CLI reads these as option defaults (shown in ``--help``) and passes plain values down;
:meth:`Settings.from_env` parses the same variables for code that embeds privaudit without the CLI.
Nothing below the entry point reads the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from privaudit.errors import ConfigError

ENV_CLICKHOUSE_DSN = "PRIVAUDIT_CLICKHOUSE_DSN"
ENV_BOOTSTRAP = "PRIVAUDIT_BOOTSTRAP_SERVERS"
ENV_DATA_DIR = "PRIVAUDIT_DATA_DIR"
ENV_RETENTION_DAYS = "PRIVAUDIT_RETENTION_DAYS"
ENV_CLUSTER = "PRIVAUDIT_CLUSTER"
ENV_PSEUDONYM_KEY = "PRIVAUDIT_PSEUDONYM_KEY"
ENV_LOG_LEVEL = "PRIVAUDIT_LOG_LEVEL"
ENV_STARTUP_WAIT = "PRIVAUDIT_STARTUP_WAIT"
ENV_CONFLUENT_IDS = "PRIVAUDIT_CONFLUENT_IDS"
ENV_SCHEMA_REGISTRY = "PRIVAUDIT_SCHEMA_REGISTRY"
ENV_ALERTING = "PRIVAUDIT_ALERTING"
ENV_DASHBOARD_TOKEN = "PRIVAUDIT_DASHBOARD_TOKEN"

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_DATA_DIR = "data"
#: Access records of a health service must be kept two years (Safety Measures standard Art. 8).
MIN_RETENTION_DAYS = 730
#: At start, a ClickHouse server or broker that cannot be reached is tried for this long (a wrong
#: address fails then, with the last error); once running, an outage is waited out without limit.
DEFAULT_STARTUP_WAIT_S = 60.0

TOPIC_EVENTS = "privaudit.events"
TOPIC_DLQ = "privaudit.dlq"
TOPIC_VIOLATIONS = "privaudit.violations"


def configure_logging(level: int | str) -> None:
    """Log to stderr: privaudit's own loggers at ``level``, the clients' (kafka, ...) at WARNING.
    Called by the CLI and by each consumer process, with the CLI's level."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    logging.getLogger("privaudit").setLevel(level.upper() if isinstance(level, str) else level)
    # kafka-python 3 warns when its network thread waited >100 ms for the GIL ("Task ... ran for
    # 0.106s"), which a process busy producing or checking makes it do; nothing is wrong then
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)


def default_dsn(data_dir: str | Path) -> str:
    """The embedded store under ``data_dir``: ``chdb:///abs/path/clickhouse``."""
    return f"chdb://{(Path(data_dir) / 'clickhouse').resolve()}"


def shown_url(url: str) -> str:
    """A URL to print or log (a store's DSN, a schema registry's): a password in it
    (``http://user:secret@host``) is masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def check_retention(days: int) -> int:
    if days < MIN_RETENTION_DAYS:
        raise ConfigError(
            f"retention of {days} days refused: access records must be kept at least "
            f"{MIN_RETENTION_DAYS} days (two years)"
        )
    return days


@dataclass(frozen=True)
class Settings:
    clickhouse_dsn: str
    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    retention_days: int | None = None  # None: keep the store's setting (Store.migrate)
    cluster: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        days = env.get(ENV_RETENTION_DAYS)
        try:
            retention = None if days is None else check_retention(int(days))
        except ValueError:
            raise ConfigError(f"{ENV_RETENTION_DAYS}={days!r} is not a whole number of days") from None
        return cls(
            clickhouse_dsn=env.get(ENV_CLICKHOUSE_DSN) or default_dsn(env.get(ENV_DATA_DIR, DEFAULT_DATA_DIR)),
            bootstrap_servers=env.get(ENV_BOOTSTRAP, DEFAULT_BOOTSTRAP),
            retention_days=retention,
            cluster=env.get(ENV_CLUSTER) or None,
        )
