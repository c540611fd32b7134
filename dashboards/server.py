"""``privaudit dashboard``: the built-in web UI over the panels' queries.

    server = serve_dashboard(store, policy, host="127.0.0.1", port=8750)   # a daemon thread
    print(server.url); ...; server.close()

Routes: ``/`` the page, ``/static/*`` its assets (shipped in the package: no CDN), and JSON under
``/api``: ``filters`` (time bounds, services, rules), ``panels`` (their list), ``panel/<id>?from=
&to=&service=&rule=&severity=``, ``event/<uuid>``, ``subject/<id>``, and ``sql?q=`` (read-only:
ClickHouse's ``readonly`` setting; ``privaudit sql`` goes through it while this process holds an
embedded store). Bound to anything but loopback the server requires a token
(``PRIVAUDIT_DASHBOARD_TOKEN``), given once as ``?token=`` (kept in an HttpOnly cookie) or as
``Authorization: Bearer``. The page's Content-Security-Policy allows only its own origin.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import mimetypes
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from privaudit.errors import ConfigError, PrivauditError
from privaudit.policy import Policy
from privaudit.settings import ENV_DASHBOARD_TOKEN
from privaudit.store import Store

from .panels import PANELS
from .queries import BadFilter, Queries

log = logging.getLogger("privaudit.dashboard")
STATIC = Path(__file__).resolve().parent / "static"
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serving_file(dsn: str) -> Path | None:
    """Where a process serving an embedded store says so (``<dir>.serving.json``), for
    ``privaudit sql`` to query through it while it holds the store."""
    return Path(dsn.removeprefix("chdb://") + ".serving.json") if dsn.startswith("chdb://") else None


class DashboardServer:
    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread, host: str,
                 notice: Path | None = None) -> None:
        self.httpd = httpd
        self.thread = thread
        self.host = host
        self.notice = notice

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        if self.notice is not None:
            self.notice.unlink(missing_ok=True)
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_dashboard(store: Store, policy: Policy | None, *, host: str = "127.0.0.1", port: int = 8750,
                    token: str | None = None) -> DashboardServer:
    if not is_loopback(host) and not token:
        raise ConfigError(f"the dashboard bound to {host} (not loopback) needs a token: set {ENV_DASHBOARD_TOKEN}")
    queries = Queries(store, policy)
    handler = _handler(queries, token)
    ThreadingHTTPServer.daemon_threads = True
    try:
        httpd = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ConfigError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror}") from exc
    thread = threading.Thread(target=httpd.serve_forever, name="dashboard", daemon=True)
    thread.start()
    server = DashboardServer(httpd, thread, host, serving_file(store.dsn))
    if server.notice is not None:
        server.notice.write_text(json.dumps({"url": server.url, "pid": os.getpid(), "token": bool(token)}))
    return server


def _handler(queries: Queries, token: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "privaudit-dashboard"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), fmt % args)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            args = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            if token is not None and not self._authorised(args):
                return
            try:
                if url.path in ("/", "/index.html"):
                    return self._file(STATIC / "index.html")
                if url.path.startswith("/static/"):
                    name = url.path.removeprefix("/static/")
                    path = (STATIC / name).resolve()
                    if STATIC not in path.parents or not path.is_file():
                        return self._json({"error": "not found"}, 404)
                    return self._file(path)
                if url.path.startswith("/api/"):
                    return self._api(url.path.removeprefix("/api/"), args)
                self._json({"error": "not found"}, 404)
            except BadFilter as exc:
                self._json({"error": str(exc)}, 400)
            except PrivauditError as exc:
                log.error("dashboard query failed: %s", exc)
                self._json({"error": str(exc)}, 500)

        def _api(self, route: str, args: dict[str, str]) -> None:
            if route == "filters":
                return self._json(queries.bounds())
            if route == "panels":
                return self._json([{"id": p.id, "section": p.section, "title": p.title, "kind": p.kind,
                                     "note": p.note, "links": p.links} for p in PANELS])
            if route.startswith("panel/"):
                panel_id = route.removeprefix("panel/")
                if panel_id not in {p.id for p in PANELS}:
                    return self._json({"error": f"unknown panel {panel_id!r}"}, 404)
                return self._json(queries.panel(panel_id, queries.default_filters(args)))
            if route.startswith("event/"):
                found = queries.event(urllib.parse.unquote(route.removeprefix("event/")))
                return self._json(found if found else {"error": "no such event"}, 200 if found else 404)
            if route == "sql":
                return self._json(queries.sql(args.get("q", "")))
            if route.startswith("subject/"):
                return self._json(queries.subject(urllib.parse.unquote(route.removeprefix("subject/"))))
            self._json({"error": "not found"}, 404)

        def _authorised(self, args: dict[str, str]) -> bool:
            assert token is not None
            given = args.get("token")
            if given is not None and hmac.compare_digest(given, token):
                self.send_response(303)
                self.send_header("Set-Cookie", f"privaudit_token={token}; HttpOnly; SameSite=Strict; Path=/")
                self.send_header("Location", urllib.parse.urlsplit(self.path).path or "/")
                self.end_headers()
                return False
            header = self.headers.get("Authorization", "")
            cookies = dict(c.strip().split("=", 1) for c in self.headers.get("Cookie", "").split(";") if "=" in c)
            for candidate in (header.removeprefix("Bearer ").strip(), cookies.get("privaudit_token", "")):
                if candidate and hmac.compare_digest(candidate, token):
                    return True
            self._json({"error": "a token is required (?token=... once, or Authorization: Bearer; "
                                 f"see {ENV_DASHBOARD_TOKEN})"}, 401)
            return False

        def _headers(self, status: int, kind: str, length: int) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(length))
            self.send_header("Content-Security-Policy", _CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()

        def _json(self, value: Any, status: int = 200) -> None:
            body = json.dumps(value, ensure_ascii=False).encode("utf-8")
            self._headers(status, "application/json; charset=utf-8", len(body))
            self.wfile.write(body)

        def _file(self, path: Path) -> None:
            body = path.read_bytes()
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            self._headers(200, kind, len(body))
            self.wfile.write(body)

    return Handler
