"""Run every panel of dashboards/grafana/*.json against an embedded store, with the ClickHouse
plugin's macros expanded as the plugin expands them; print ``{title: rows or error}`` as JSON.
A script of its own because the embedded engine admits one data directory per process.

    python tests/integration/grafana_panels.py DATA_DIR FROM_UNIX TO_UNIX [SERVICE]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from privaudit.settings import default_dsn
from privaudit.store import Store

GRAFANA = Path(__file__).resolve().parents[2] / "dashboards" / "grafana"


def expand(sql: str, start: int, end: int, variables: dict[str, str]) -> str:
    """As grafana-clickhouse-datasource v4 does: $__fromTime -> toDateTime(intDiv(ms, 1000)); a
    ``${name:sqlstring}`` variable -> the value quoted, with quotes and backslashes escaped."""
    sql = sql.replace("$__fromTime", f"toDateTime(intDiv({start * 1000},1000))")
    sql = sql.replace("$__toTime", f"toDateTime(intDiv({end * 1000},1000))")
    sql = sql.replace("$__interval_s", str(max(60, (end - start) // 100)))  # Grafana: range / max data points

    def variable(m: re.Match[str]) -> str:
        value = variables.get(m.group(1), "")
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"

    sql = re.sub(r"\$\{(\w+):sqlstring\}", variable, sql)
    if "$" in sql:
        raise ValueError(f"unexpanded macro in: {sql}")
    return sql


def main() -> None:
    data_dir, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    variables = {"service": sys.argv[4]} if len(sys.argv) > 4 else {}
    store = Store.connect(default_dsn(data_dir))
    out: dict[str, dict] = {}
    for path in sorted(GRAFANA.glob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for target in panel.get("targets", []):
                try:
                    _, rows = store.query(expand(target["rawSql"], start, end, variables))
                    out[panel["title"]] = {"rows": len(rows), "first": [str(v) for v in rows[0]] if rows else None}
                except Exception as exc:  # reported per panel, the test fails on it
                    out[panel["title"]] = {"error": str(exc).splitlines()[0]}
    store.close()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
