"""The schema as generated SQL: one node, and a cluster (which cannot run here)."""

from __future__ import annotations

import re

import pytest

from privaudit.errors import ConfigError
from privaudit.settings import Settings
from privaudit.store import ddl
from privaudit.store.migrations import MIGRATIONS, render


def test_single_node_tables_keep_a_dedup_window_and_the_ttl():
    sql = "\n".join(render(ddl.Target("privaudit", 730)))
    assert "ON CLUSTER" not in sql and "Replicated" not in sql and "Distributed" not in sql
    events = next(s for s in render(ddl.Target()) if "privaudit.events\n" in s)
    assert "ENGINE = ReplacingMergeTree" in events and "PARTITION BY toYYYYMM(occurred_at)" in events
    assert "TTL occurred_at + INTERVAL 730 DAY" in events
    assert f"non_replicated_deduplication_window = {ddl.DEDUP_WINDOW}" in events
    assert "event_id UUID" in events and "ORDER BY (type, service, occurred_at, event_id)" in events
    state = next(s for s in render(ddl.Target()) if "privaudit.subject_state\n" in s)
    assert "\nTTL " not in state  # consents must outlive the access-record retention


def test_cluster_rendering_uses_replicated_local_tables_and_distributed_fronts():
    statements = render(ddl.Target("privaudit", 1095, "audit_cluster"))
    assert all(" ON CLUSTER audit_cluster" in s for s in statements if not s.startswith("INSERT"))  # DDL on every node
    for table in ddl.TABLES:
        name = table.name
        local = next(s for s in statements
                     if f"privaudit.{name}_local ON CLUSTER" in s and s.startswith("CREATE TABLE"))
        path = rf"'/clickhouse/tables/{{shard}}/privaudit/{name}_local', '{{replica}}'"
        assert re.search(rf"ENGINE = Replicated\w*MergeTree\({path}", local)
        front = next(s for s in statements
                     if f"privaudit.{name} ON CLUSTER audit_cluster AS privaudit.{name}_local" in s)
        assert f"ENGINE = Distributed(audit_cluster, privaudit, {table.name}_local, {table.shard_key})" in front
        if table.dedup:
            assert f"replicated_deduplication_window = {ddl.DEDUP_WINDOW}" in local
    progress = next(s for s in statements if "privaudit.progress_local ON CLUSTER" in s)
    path = "'/clickhouse/tables/{shard}/privaudit/progress_local', '{replica}'"
    assert f"ReplicatedReplacingMergeTree({path}, updated_at)" in progress
    view = next(s for s in statements if "MATERIALIZED VIEW" in s)
    assert "TO privaudit.usage_daily_local" in view and "FROM privaudit.events_local" in view
    assert "INTERVAL 1095 DAY" in "\n".join(statements)


@pytest.mark.parametrize("days", [0, 365, 729])
def test_a_retention_shorter_than_two_years_is_refused(days):
    with pytest.raises(ConfigError, match="at least 730 days"):
        ddl.Target(retention_days=days)
    with pytest.raises(ConfigError, match="at least 730 days"):
        Settings.from_env({"PRIVAUDIT_RETENTION_DAYS": str(days)})


def test_settings_from_the_environment():
    s = Settings.from_env({"PRIVAUDIT_DATA_DIR": "/srv/pa", "PRIVAUDIT_BOOTSTRAP_SERVERS": "kafka:9092"})
    assert s.clickhouse_dsn == "chdb:///srv/pa/clickhouse" and s.bootstrap_servers == "kafka:9092"
    assert s.retention_days is None  # not set: the store keeps its own
    assert Settings.from_env({"PRIVAUDIT_RETENTION_DAYS": "1095"}).retention_days == 1095
    assert Settings.from_env({"PRIVAUDIT_CLICKHOUSE_DSN": "http://ch:8123"}).clickhouse_dsn == "http://ch:8123"
    with pytest.raises(ConfigError, match="whole number"):
        Settings.from_env({"PRIVAUDIT_RETENTION_DAYS": "two years"})


def test_migration_3_rebuilds_usage_daily_on_every_node_and_backfills_through_the_fronts():
    [migration] = [m for m in MIGRATIONS if m.version == 3]
    statements = migration.statements(ddl.Target("privaudit", 730, "audit_cluster"))
    assert statements[:3] == [
        "DROP VIEW IF EXISTS privaudit.usage_daily_mv ON CLUSTER audit_cluster SYNC",
        "DROP TABLE IF EXISTS privaudit.usage_daily ON CLUSTER audit_cluster SYNC",
        "DROP TABLE IF EXISTS privaudit.usage_daily_local ON CLUSTER audit_cluster SYNC",
    ]
    local = statements[3]
    assert local.startswith("CREATE TABLE IF NOT EXISTS privaudit.usage_daily_local ON CLUSTER audit_cluster")
    assert "events AggregateFunction(uniqExact, UUID)" in local and "ReplicatedAggregatingMergeTree" in local
    assert "uniqExactState(event_id) AS events" in statements[5]
    assert "FROM privaudit.events_local GROUP BY" in statements[5]
    backfill = statements[6]
    assert backfill.startswith("INSERT INTO privaudit.usage_daily SELECT")
    assert "FROM privaudit.events GROUP BY" in backfill
    # migration 1 stays as released: a sum
    first = "\n".join(MIGRATIONS[0].statements(ddl.Target()))
    assert "events SimpleAggregateFunction(sum, UInt64)" in first and "count() AS events" in first
