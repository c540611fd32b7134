"""``privaudit sql QUERY``: reads of the store for a person, and writes only when asked for by name.

The audit record is evidence: a statement that changes it (an ``INSERT`` of a made-up violation,
an ``ALTER TABLE ... DELETE``, a ``DROP``) must never run by accident or through a read path. So
``sql`` runs reads only (:mod:`privaudit.store.readonly`: ClickHouse's parser decides), and a
write needs ``--write``, which logs the statement at WARNING. An embedded store that another
process holds is read through that process's dashboard, which runs reads only, whatever is asked.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

import click

from privaudit import settings as cfg
from privaudit.dashboards.client import query_through_server
from privaudit.errors import QueryRefused, StoreBusy, excerpt
from privaudit.i18n import in_kst
from privaudit.store import Store, query_read_only, read_only_statement, shown_dsn

from .options import clickhouse_option, data_dir_option, store_dsn
from .terminal import Output

log = logging.getLogger("privaudit.sql")


@click.command()
@click.argument("query")
@clickhouse_option
@data_dir_option
@click.option("--write", is_flag=True,
              help="Let QUERY change the store (INSERT, ALTER, DELETE, DROP, OPTIMIZE ...). It changes the audit "
                   "record itself, the evidence the compliance team keeps; each such statement is logged at "
                   "WARNING. Without it only reads run: SELECT, WITH, SHOW, DESCRIBE, EXPLAIN.")
@click.option("--json", "json_mode", is_flag=True, help="One JSON object per row.")
def sql(query: str, dsn: str | None, data_dir: str, write: bool, json_mode: bool) -> None:
    """Run QUERY against the configured store: reads only, unless --write.

    An embedded store held by a process serving the dashboard (privaudit run --dashboard-port,
    demo, dashboard) is read through it; that path runs reads only.
    """
    target = store_dsn(dsn, data_dir)
    try:
        store = Store.connect(target)
    except StoreBusy as busy:
        if write:
            raise StoreBusy(f"{busy}; --write needs the store to itself: stop that process first") from busy
        columns, rows = query_through_server(target, query, token=os.environ.get(cfg.ENV_DASHBOARD_TOKEN) or None)
    else:
        try:
            columns, rows = _run(store, query, write)
        finally:
            store.close()
    out = Output(json_mode)
    if json_mode:
        for row in rows:
            out.json({c: _plain(v) for c, v in zip(columns, row, strict=True)})
    else:
        out.table(f"{len(rows)} row(s) (times in KST)", columns, rows)


def _run(store: Store, query: str, write: bool) -> tuple[list[str], list[tuple[Any, ...]]]:
    if not write:
        return query_read_only(store, query)
    try:
        return store.query(read_only_statement(store, query), readonly=True)
    except QueryRefused:
        pass  # not a read: the write asked for
    log.warning("privaudit sql --write: running a statement that may change the audit record in %s: %s",
                shown_dsn(store.dsn), excerpt(query, 500, quoted=False))
    summary = store.command(query)
    return ["result"], [(str(summary),)]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):  # stored in UTC: ISO 8601 in KST, with its offset
        return in_kst(value).isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)
