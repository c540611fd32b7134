"""The Grafana dashboard, generated from the same panels as the built-in one.

    python -m privaudit.dashboards.grafana        # rewrites dashboards/grafana/privaudit.json

Each panel's SQL is the built-in dashboard's, with its query parameters turned into what the
ClickHouse data source plugin (grafana-clickhouse-datasource, v4) expands: ``{from:DateTime64(3)}``
-> ``$__fromTime``, ``{to:DateTime64(3)}`` -> ``$__toTime``, ``{service:String}`` ->
``${service:sqlstring}`` (Grafana quotes and escapes the variable; empty means all),
``{bucket:UInt32}`` -> ``$__interval_s``. Tests expand the
macros back and run every panel against the real engine loaded with demo data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from privaudit.policy import Policy, load_policy

from .panels import PANELS, Panel

HERE = Path(__file__).resolve().parent / "grafana"
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "privaudit-clickhouse"}
VARIABLES = ("service", "rule", "severity", "who", "actor", "reason")
_FORMAT = {"stacked": 0, "bars": 1, "table": 1, "stat": 1}  # plugin v4: 0 time series, 1 table


def grafana_sql(sql: str) -> str:
    sql = sql.replace("{from:DateTime64(3)}", "$__fromTime").replace("{to:DateTime64(3)}", "$__toTime")
    sql = sql.replace("{bucket:UInt32}", "$__interval_s")
    for name in VARIABLES:
        sql = sql.replace(f"{{{name}:String}}", f"${{{name}:sqlstring}}")
    if re.search(r"(?<!\$)\{\w+:\w+", sql):
        raise ValueError(f"a query parameter has no Grafana form: {sql}")
    return sql


def _panel(p: Panel, grid: dict[str, int], policy: Policy | None) -> dict[str, Any]:
    panel: dict[str, Any] = {
        "title": p.title,
        "description": p.note,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": [{
            "refId": "A", "datasource": DATASOURCE, "editorType": "sql", "queryType": "table",
            "format": _FORMAT[p.kind], "rawSql": grafana_sql(p.sql),
        }],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    if p.kind == "stat":
        panel.update(type="stat", options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                                           "colorMode": "none", "graphMode": "none", "textMode": "value_and_name"})
    elif p.kind == "stacked":
        panel.update(type="timeseries")
        panel["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "bars", "stacking": {"mode": "normal"},
                                                      "fillOpacity": 80}
    elif p.kind == "bars":
        panel.update(type="barchart", options={"orientation": "horizontal", "xField": "label", "showValue": "auto"})
    else:
        panel.update(type="table")
    if p.purpose_column and policy is not None:
        texts: dict[str, str] = {}
        for version in policy.versions:
            texts.update(version.purpose_text)
        panel["fieldConfig"]["defaults"]["mappings"] = [{
            "type": "value",
            "options": {code: {"text": f"{code} {text}", "index": n}
                        for n, (code, text) in enumerate(sorted(texts.items()))},
        }]
    return panel


def dashboard(policy: Policy | None = None) -> dict[str, Any]:
    """Rows per section; wide panels (time series, tables) take a row, the others two by two."""
    panels: list[dict[str, Any]] = []
    y, x, section = 0, 0, None
    for p in PANELS:
        if p.section != section:
            y += 8 if x else 0
            panels.append({"type": "row", "title": p.section, "collapsed": False,
                           "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
            y, x, section = y + 1, 0, p.section
        if p.kind in ("stacked", "table"):
            if x:
                y, x = y + 8, 0
            grid = {"x": 0, "y": y, "w": 24, "h": 9}
            y += 9
        else:
            grid = {"x": x, "y": y, "w": 12, "h": 8}
            x = 12 if x == 0 else 0
            y += 8 if x == 0 else 0
        panels.append(_panel(p, grid, policy))
    for n, panel in enumerate(panels, start=1):
        panel["id"] = n
    variables = [{
        "name": name, "label": name.title(), "type": "textbox", "query": "", "current": {"text": "", "value": ""},
        "description": f"Empty: every {name}",
    } for name in VARIABLES]
    return {
        "uid": "privaudit-overview",
        "title": "privaudit: use of personal data and policy violations",
        "tags": ["privaudit", "privacy", "PIPA"],
        "timezone": "Asia/Seoul",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-90d", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": panels,
    }


def write(path: Path = HERE / "privaudit.json") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dashboard(load_policy()), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write())
