"""docker-compose.yml cannot run here (no Docker engine): parse it and check it against the CLI."""

from __future__ import annotations

import yaml

from privaudit import settings
from privaudit.cli.app import cli
from tests.helpers import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]


def test_the_services_and_their_health_checks():
    assert set(SERVICES) == {"kafka", "clickhouse", "consumer", "simulator", "alertmanager", "alerts", "dashboard",
                             "grafana"}
    for name in ("kafka", "clickhouse", "consumer", "alertmanager", "grafana"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert SERVICES["consumer"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"}, "clickhouse": {"condition": "service_healthy"},
    }


def test_environment_uses_the_settings_names():
    known = {settings.ENV_BOOTSTRAP, settings.ENV_CLICKHOUSE_DSN, settings.ENV_RETENTION_DAYS}
    known |= {"PRIVAUDIT_WEBHOOK_SECRET", "PRIVAUDIT_DASHBOARD_TOKEN"}
    for name in ("consumer", "simulator", "alerts", "dashboard"):
        assert set(SERVICES[name]["environment"]) <= known, name
    dsn = SERVICES["consumer"]["environment"][settings.ENV_CLICKHOUSE_DSN]
    password = SERVICES["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"]
    assert dsn == f"http://default:{password}@clickhouse:8123"
    assert int(SERVICES["consumer"]["environment"][settings.ENV_RETENTION_DAYS]) >= settings.MIN_RETENTION_DAYS


def test_each_privaudit_command_parses_with_the_real_cli():
    for name in ("consumer", "simulator", "alerts", "dashboard"):
        mounted = {m.split(":")[1]: str(REPO / m.split(":")[0]) for m in SERVICES[name].get("volumes", [])}
        args = [mounted.get(a, a) for a in SERVICES[name]["command"]]  # files the container mounts, from the repo
        command = cli.get_command(None, args[0])  # type: ignore[arg-type]
        assert command is not None, args[0]
        ctx = command.make_context(args[0], list(args[1:]))  # parses, raises on unknown options
        assert ctx.params
    consume_args = SERVICES["consumer"]["command"]
    assert consume_args[consume_args.index("--metrics-host") + 1] == "0.0.0.0"
    port = consume_args[consume_args.index("--metrics-port") + 1]
    assert f"localhost:{port}/metrics" in " ".join(SERVICES["consumer"]["healthcheck"]["test"])


def test_alerting_grafana_and_their_mounted_files():
    from privaudit.consumers.alerting import load_alerting

    mounts = {m.split(":")[0]: m.split(":")[1] for m in SERVICES["alerts"]["volumes"]}
    routing = load_alerting(REPO / mounts["./deploy/alerting.yaml"].replace("/etc/privaudit/", "deploy/"))
    assert routing.sinks["oncall"].url == "http://alertmanager:9093"
    command = SERVICES["alerts"]["command"]
    assert command[command.index("--config") + 1] == mounts["./deploy/alerting.yaml"]
    am = yaml.safe_load((REPO / "deploy" / "alertmanager.yml").read_text(encoding="utf-8"))
    assert am["route"]["receiver"] in {r["name"] for r in am["receivers"]}
    grafana = SERVICES["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    for volume in grafana["volumes"]:
        assert (REPO / volume.split(":")[0]).is_dir(), volume
    provisioning = REPO / "dashboards/grafana/provisioning"
    sources = yaml.safe_load((provisioning / "datasources/privaudit.yaml").read_text(encoding="utf-8"))
    clickhouse = next(d for d in sources["datasources"] if d["type"] == "grafana-clickhouse-datasource")
    assert clickhouse["jsonData"]["host"] == "clickhouse" and clickhouse["uid"] == "privaudit-clickhouse"
    dashboards = yaml.safe_load((provisioning / "dashboards/privaudit.yaml").read_text(encoding="utf-8"))
    path = dashboards["providers"][0]["options"]["path"]
    assert any(v.endswith(":" + path + ":ro") for v in grafana["volumes"])
    token = SERVICES["dashboard"]["environment"]["PRIVAUDIT_DASHBOARD_TOKEN"]
    assert token and "0.0.0.0" in SERVICES["dashboard"]["command"]
