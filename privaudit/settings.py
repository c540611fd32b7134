"""Configuration: every environment variable in one place, parsed once at the entry point.

The CLI reads these as option defaults (shown in ``--help``) and passes plain values down;
:meth:`Settings.from_env` parses the same variables for code that embeds privaudit without the CLI.
Nothing below the entry point reads the environment.
"""

from __future__ import annotations

import logging
import os
import re
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
ENV_DASHBOARD_HOSTS = "PRIVAUDIT_DASHBOARD_HOSTS"
ENV_CLOCK_SKEW = "PRIVAUDIT_CLOCK_SKEW"
ENV_MAX_RECORD_BYTES = "PRIVAUDIT_MAX_RECORD_BYTES"
ENV_LEDGER_KEY = "PRIVAUDIT_LEDGER_KEY"
ENV_LANG = "PRIVAUDIT_LANG"

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_DATA_DIR = "data"
#: Access records of a health service must be kept two years (Safety Measures standard Art. 8).
MIN_RETENTION_DAYS = 730
#: At start, a ClickHouse server or broker that cannot be reached is tried for this long (a wrong
#: address fails then, with the last error); once running, an outage is waited out without limit.
DEFAULT_STARTUP_WAIT_S = 60.0
#: How far past the wall clock an event's occurred_at may be (other machines' clocks run fast);
#: later is a contract error (a dead letter), never stored.
DEFAULT_CLOCK_SKEW_S = 86_400.0

TOPIC_EVENTS = "privaudit.events"
TOPIC_DLQ = "privaudit.dlq"
TOPIC_VIOLATIONS = "privaudit.violations"
TOPIC_LEDGER = "privaudit.ledger"


def configure_logging(level: int | str) -> None:
    """Log to stderr: privaudit's own loggers at ``level``; the libraries' (kafka, uvicorn ...)
    not at all, unless ``level`` is DEBUG. A broker that is away makes kafka-python log every
    reconnection attempt, dozens of lines a minute; privaudit says once per wait what it waits for
    (:mod:`privaudit.backoff`). Called by the CLI and by each consumer process, with the CLI's level."""
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    debug = numeric <= logging.DEBUG
    logging.basicConfig(level=logging.DEBUG if debug else logging.CRITICAL,
                        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.DEBUG if debug else logging.CRITICAL)
    logging.getLogger("privaudit").setLevel(numeric)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """``90``, ``"90s"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"250ms"`` -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (e.g. 30s, 5m, 1h, 1d)")
    return float(m.group(1)) * _UNIT[m.group(2)]


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


def redacted_url(url: str) -> str:
    """A receiver's URL for a log line or a table: scheme, host and port only. Its credentials,
    path and query go: a Slack hook's token, or a webhook's, lives in the path."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "(an unreadable URL)"
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{port}" if port else ""
    rest = "/..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{netloc}{rest}"


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
