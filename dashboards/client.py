"""The client of a running dashboard: how ``privaudit sql`` reaches an embedded store that another
process holds (the embedded engine admits one process per directory).

A process serving the dashboard on an embedded store says so in a notice beside the store's
directory (:func:`~.server.serving_file`: its URL and pid); the client finds it there and sends
the query to the server's read-only SQL endpoint.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from privaudit.errors import StoreBusy, StoreError

from .server import serving_file


def serving_process(dsn: str) -> dict[str, Any]:
    """The notice of the live process serving the embedded store ``dsn``; :class:`StoreBusy` if none."""
    notice = serving_file(dsn)
    serving: dict[str, Any] | None = None
    if notice is not None:
        try:
            serving = json.loads(notice.read_text())
            os.kill(int(serving["pid"]), 0)  # still running? (a SIGKILLed process leaves its notice)
        except (OSError, ValueError, KeyError, TypeError):
            serving = None
    if not serving:
        raise StoreBusy(f"the embedded store {dsn.removeprefix('chdb://')} is in use by another process that serves "
                        "no dashboard: stop it, or run it with --dashboard-port to query through it")
    return serving


def query_through_server(dsn: str, query: str, *, token: str | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``(columns, rows)`` of ``query``, run read-only by the dashboard of the process holding ``dsn``."""
    body = get_through_server(dsn, "sql", {"q": query}, token=token)
    return body["columns"], [tuple(r) for r in body["rows"]]


def get_through_server(dsn: str, path: str, params: dict[str, str], *, token: str | None = None) -> Any:
    """The JSON answer of ``/api/<path>?<params>`` from the dashboard of the process holding ``dsn``
    (``report``, ``subject/<id>``, ``sql``)."""
    serving = serving_process(dsn)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{serving['url']}api/{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        reason = json.loads(exc.read() or b"{}").get("error", exc.reason)
        raise StoreError(f"through the process serving {serving['url']}: {reason}") from exc
    except OSError as exc:
        raise StoreBusy(f"the embedded store is held by pid {serving['pid']}, whose dashboard at {serving['url']} "
                        f"does not answer: {exc}") from exc
    return body
