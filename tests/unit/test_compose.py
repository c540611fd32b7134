"""docker-compose.yml cannot run here (no Docker engine): parse it and check it against the CLI."""

from __future__ import annotations

import yaml

from privaudit import settings
from privaudit.cli.app import cli
from tests.helpers import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]


def test_the_services_and_their_health_checks():
    assert set(SERVICES) == {"kafka", "clickhouse", "consumer", "simulator"}
    for name in ("kafka", "clickhouse", "consumer"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert SERVICES["consumer"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"}, "clickhouse": {"condition": "service_healthy"},
    }


def test_environment_uses_the_settings_names():
    known = {settings.ENV_BOOTSTRAP, settings.ENV_CLICKHOUSE_DSN, settings.ENV_RETENTION_DAYS}
    for name in ("consumer", "simulator"):
        assert set(SERVICES[name]["environment"]) <= known, name
    dsn = SERVICES["consumer"]["environment"][settings.ENV_CLICKHOUSE_DSN]
    password = SERVICES["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"]
    assert dsn == f"http://default:{password}@clickhouse:8123"
    assert int(SERVICES["consumer"]["environment"][settings.ENV_RETENTION_DAYS]) >= settings.MIN_RETENTION_DAYS


def test_each_privaudit_command_parses_with_the_real_cli():
    for name in ("consumer", "simulator"):
        args = SERVICES[name]["command"]
        command = cli.get_command(None, args[0])  # type: ignore[arg-type]
        assert command is not None, args[0]
        ctx = command.make_context(args[0], list(args[1:]))  # parses, raises on unknown options
        assert ctx.params
    consume_args = SERVICES["consumer"]["command"]
    assert consume_args[consume_args.index("--metrics-host") + 1] == "0.0.0.0"
    port = consume_args[consume_args.index("--metrics-port") + 1]
    assert f"localhost:{port}/metrics" in " ".join(SERVICES["consumer"]["healthcheck"]["test"])
