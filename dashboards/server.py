"""``privaudit dashboard``: the built-in web UI over the panels' queries, served by Starlette on
uvicorn in a thread of the process that holds the store.

    server = serve_dashboard(store, policy, host="127.0.0.1", port=8750)
    print(server.url); ...; server.close()

Routes: ``/`` the page, ``/static/*`` its assets (shipped in the package, ECharts vendored: no
CDN), and JSON under ``/api``: ``filters`` (time bounds in KST days, services, rules, the default
language), ``messages?lang=`` (the catalogue and the names of codes), ``panels`` (their list),
``panel/<id>?from=&to=&service=&rule=&severity=&who=&actor=&reason=``, ``event/<uuid>``,
``subject/<id>?from=&to=``, ``find-subject`` (POST: a phone number or an e-mail address in the
body, pseudonymised here and never logged), ``report?month=`` (the monthly review's figures, for
``privaudit report``) and ``sql?q=`` (reads only: :mod:`privaudit.store.readonly`; ``privaudit
sql`` goes through it while this process holds an embedded store). Every request passes
:mod:`.guards`: its ``Host`` must be this server's, nothing another site's page sends is served,
and off loopback a token is required (at least :data:`MIN_TOKEN_CHARS` characters; one is made
and printed once if none is given).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from privaudit.errors import ConfigError, PrivauditError, excerpt
from privaudit.i18n import DEFAULT_LANGUAGE, language
from privaudit.policy import Policy
from privaudit.settings import ENV_DASHBOARD_TOKEN
from privaudit.store import Statements

from .guards import CrossSite, SecurityHeaders, TokenRequired
from .panels import PANELS
from .queries import BadFilter, Queries
from .report import Month, gather

log = logging.getLogger("privaudit.dashboard")
STATIC = Path(__file__).resolve().parent / "static"
#: A dashboard token shorter than this is refused: it guards the audit record off loopback.
MIN_TOKEN_CHARS = 32
#: The largest member search accepted (a phone number or an e-mail address, in JSON).
SEARCH_BODY_BYTES = 4096
#: How long a session opened with the token lasts.
SESSION_SECONDS = 12 * 3600


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


def allowed_hosts(host: str, names: tuple[str, ...] = ()) -> list[str]:
    """The ``Host`` values to serve: the bound address, loopback's names when bound there, this
    machine's names and addresses when bound to every interface, and ``names``."""
    allowed = {host, *names}
    if is_loopback(host):
        allowed |= {"localhost", "127.0.0.1", "::1"}
    if host in ("0.0.0.0", "::", ""):
        allowed |= {"localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()}
        with contextlib.suppress(OSError):
            allowed |= {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
    return sorted(allowed)


def create_app(queries: Queries, *, token: str | None, hosts: list[str], lang: str = DEFAULT_LANGUAGE) -> Starlette:
    """The dashboard as an ASGI app (see the module's doc); ``lang``: the language the page speaks
    unless it asks for another (``?lang=en``)."""

    def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    def api(call: Any) -> Any:
        def endpoint(request: Request) -> Response:
            args = {k: v for k, v in request.query_params.items()}
            try:
                found = call(request, args)
            except BadFilter as exc:
                return JSONResponse({"error": str(exc)}, 400)
            except PrivauditError as exc:
                log.error("dashboard query failed: %s", exc)
                return JSONResponse({"error": str(exc)}, 500)
            if isinstance(found, Response):
                return found
            return JSONResponse(found)

        return endpoint

    def panel(request: Request, args: dict[str, str]) -> Any:
        panel_id = request.path_params["panel"]
        if panel_id not in {p.id for p in PANELS}:
            return JSONResponse({"error": f"unknown panel {excerpt(panel_id)}"}, 404)
        return queries.panel(panel_id, queries.default_filters(args), asked_language(args))

    def event(request: Request, args: dict[str, str]) -> Any:
        found = queries.event(request.path_params["event_id"], asked_language(args))
        return found if found else JSONResponse({"error": "no such event"}, 404)

    def asked_language(args: dict[str, str]) -> str:
        try:
            return language(args.get("lang"), lang)
        except ConfigError as exc:
            raise BadFilter(str(exc)) from None

    def bounds(request: Request, args: dict[str, str]) -> Any:
        return {**queries.bounds(), "lang": lang}

    async def find_subject(request: Request) -> Response:
        # in the body of a POST, so that a phone number or an address stays out of URLs, histories and logs
        raw = b""
        async for chunk in request.stream():  # an identifier is short: a larger body is refused unread
            raw += chunk
            if len(raw) > SEARCH_BODY_BYTES:
                return JSONResponse({"error": f"a search is at most {SEARCH_BODY_BYTES} bytes"}, 413)
        try:
            body = json.loads(raw)
            text = body["q"] if isinstance(body, dict) and isinstance(body.get("q"), str) else None
            if text is None:
                raise BadFilter("send {\"q\": \"...\"}")
            return JSONResponse({"subject_id": queries.find_subject(text)})
        except (ValueError, BadFilter) as exc:
            return JSONResponse({"error": str(exc) if isinstance(exc, BadFilter) else "not JSON"}, 400)

    def report(request: Request, args: dict[str, str]) -> Any:
        try:
            month = Month.parse(args.get("month", ""))
        except ConfigError as exc:
            raise BadFilter(str(exc)) from None
        return gather(queries.store, month)

    panels = [{"id": p.id, "section": p.section, "title": p.title, "kind": p.kind, "note": p.note, "links": p.links}
              for p in PANELS]
    routes = [
        Route("/", page), Route("/index.html", page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/api/filters", api(bounds)),
        Route("/api/messages", api(lambda request, args: queries.messages(asked_language(args)))),
        Route("/api/panels", api(lambda request, args: panels)),
        Route("/api/panel/{panel}", api(panel)),
        Route("/api/event/{event_id}", api(event)),
        Route("/api/subject/{subject_id:path}", api(lambda request, args: queries.subject(
            request.path_params["subject_id"], queries.default_filters(args), asked_language(args)))),
        Route("/api/find-subject", find_subject, methods=["POST"]),
        Route("/api/report", api(report)),
        Route("/api/sql", api(lambda request, args: queries.sql(args.get("q", "")))),
    ]
    # outermost first: headers on every answer, then Host, then other sites, then the token
    middleware = [Middleware(SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
                  Middleware(CrossSite)]
    if token is not None:
        middleware += [Middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(32), session_cookie="privaudit",
                                  max_age=SESSION_SECONDS, same_site="strict", https_only=False),
                       Middleware(TokenRequired, token=token)]
    return Starlette(routes=routes, middleware=middleware)


class DashboardServer:
    """uvicorn serving the app on a socket bound here, in a daemon thread."""

    def __init__(self, app: Starlette, sock: socket.socket, host: str, notice: Path | None = None, *,
                 token: str | None = None, token_made: bool = False) -> None:
        self.host, self.notice, self._socket = host, notice, sock
        self.token, self.token_made = token, token_made  # made here: to be said once, where it was asked for
        self._server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning", access_log=False,
                                                     lifespan="off"))
        self.thread = threading.Thread(target=self._run, name="dashboard", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        if self.notice is not None:
            self.notice.unlink(missing_ok=True)
        self._server.should_exit = True
        self.thread.join(10)
        self._socket.close()


def serve_dashboard(store: Statements, policy: Policy | None, *, host: str = "127.0.0.1", port: int = 8750,
                    token: str | None = None, names: tuple[str, ...] = (), lang: str = DEFAULT_LANGUAGE,
                    pseudonymize: Callable[[str], str] | None = None) -> DashboardServer:
    """Serve the dashboard. Off loopback a token is required; without ``token`` one is made
    (``server.token_made``: the caller says it once, see :func:`token_link`). ``lang``: the
    console's language unless a page asks for another; ``pseudonymize``: the services' keyed
    pseudonymisation, for the member search by phone number or e-mail address."""
    if token is not None and (len(token) < MIN_TOKEN_CHARS or len(set(token)) < 8 or token.strip() != token):
        raise ConfigError(f"{ENV_DASHBOARD_TOKEN} is {len(token)} characters long, {len(set(token))} distinct: a "
                          f"dashboard token needs at least {MIN_TOKEN_CHARS} characters, 8 of them distinct, and no "
                          "surrounding spaces (e.g. `openssl rand -hex 24`)")
    made = not is_loopback(host) and token is None
    if made:
        token = secrets.token_urlsafe(32)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    app = create_app(Queries(store, policy, pseudonymize), token=token, hosts=allowed_hosts(host, names), lang=lang)
    server = DashboardServer(app, sock, host, serving_file(store.dsn), token=token, token_made=made)
    if server.notice is not None:
        server.notice.write_text(json.dumps({"url": server.url, "pid": os.getpid(), "token": token is not None}))
    return server


def token_link(server: DashboardServer) -> str:
    """The address that opens a session (the token once, then a cookie); the plain URL on loopback."""
    if server.token is None:
        return server.url
    return f"{server.url}?{urllib.parse.urlencode({'token': server.token})}"
