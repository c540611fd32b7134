"""Versioned, idempotent migrations: ``privaudit db migrate``.

Each migration is a version number, a name and the statements to run; every statement is
idempotent (IF NOT EXISTS), so a migration interrupted half-way is simply run again. Applied
versions are recorded in ``<db>.schema_migrations``. Migrations are append-only: never edit one
that was released, add the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import ddl


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[ddl.Target], list[str]]


def _initial(t: ddl.Target) -> list[str]:
    out: list[str] = []
    for table in ddl.TABLES_V1:
        out += ddl.create_table(t, ddl.as_of(table, 1))
    out.append(ddl.create_view(t, ddl.USAGE_DAILY_MV_V1))
    return out


def _exact_usage(t: ddl.Target) -> list[str]:
    """``usage_daily`` rebuilt to count distinct event ids. Idempotent: run again after a crash it
    rebuilds again. Events loaded while it runs reach the new view, the backfill, or both, and
    counting distinct ids makes both the same."""
    return [
        ddl.drop_view(t, ddl.USAGE_DAILY_MV_V1),
        *ddl.drop_table(t, ddl.USAGE_DAILY_V1),
        *ddl.create_table(t, ddl.USAGE_DAILY),
        ddl.create_view(t, ddl.USAGE_DAILY_MV),
        ddl.backfill(t, ddl.USAGE_DAILY_MV),
    ]


def _evidence(t: ddl.Target) -> list[str]:
    """Rows keep their source position in the sorting key (so a later record never replaces an
    earlier one), events their content and verdict hashes; repeats, rewrites, the signed ledger and
    the per-field hashes of events as loaded."""
    out: list[str] = []
    for table in (ddl.EVENTS, ddl.VIOLATIONS, ddl.DEAD_LETTERS):
        out += ddl.extend_order(t, table, 7)
    out += ddl.add_index(t, ddl.EVENTS, "offset_idx")
    for table in (ddl.REPEATS, ddl.REWRITES, ddl.LEDGER, ddl.EVENT_FIELDS, ddl.VERIFICATIONS, ddl.EMITTER_SEQS):
        out += ddl.create_table(t, table)
    out.append(ddl.create_view(t, ddl.EVENT_FIELDS_MV))
    return out


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, violations, subject state, batch journal, progress, usage statistics", _initial),
    Migration(2, "alert history, dead letters, high watermarks in progress", lambda t: [
        *ddl.create_table(t, ddl.as_of(ddl.ALERTS, 2)),
        *ddl.create_table(t, ddl.as_of(ddl.DEAD_LETTERS, 2)),
        *ddl.columns_added(t, 2),
    ]),
    Migration(3, "usage statistics count a repeated event once", _exact_usage),
    Migration(4, "caught-up partitions, for the bulk stage across processes",
              lambda t: ddl.create_table(t, ddl.as_of(ddl.CAUGHT_UP, 4))),
    Migration(5, "the retention TTL in DateTime64 arithmetic, which cannot wrap past 2106",
              lambda t: [ddl.modify_ttl(t, table) for table in (ddl.EVENTS, ddl.VIOLATIONS)]),
    Migration(6, "the lives of a topic: rows and the journal say which one they belong to",
              lambda t: [*ddl.create_table(t, ddl.INCARNATIONS), *ddl.columns_added(t, 6)]),
    Migration(7, "evidence: source positions in sorting keys, content hashes, repeats, rewrites, the signed ledger",
              _evidence),
    Migration(8, "rule messages keep their template and parameters, so either language can say them",
              lambda t: ddl.columns_added(t, 8)),
)


def bookkeeping(t: ddl.Target) -> list[str]:
    return [
        ddl.create_database(t),
        f"CREATE TABLE IF NOT EXISTS {t.database}.schema_migrations{t.on_cluster} "
        f"(version UInt32, name String, retention_days UInt32, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        f"ENGINE = {'Replicated' if t.cluster else ''}MergeTree"
        + (f"('/clickhouse/tables/{{shard}}/{t.database}/schema_migrations', '{{replica}}')" if t.cluster else "")
        + " ORDER BY version",
    ]


def render(t: ddl.Target) -> list[str]:
    """Every statement of every migration, for ``db migrate --print`` and for tests."""
    out = bookkeeping(t)
    for migration in MIGRATIONS:
        out += migration.statements(t)
    return out
