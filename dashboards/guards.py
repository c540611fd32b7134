"""What stands between the dashboard and anyone who is not its user: three ASGI middlewares.

- **Host** (Starlette's ``TrustedHostMiddleware``): a request whose ``Host`` is not the address the
  server is bound to, a name of this machine, or a configured name is answered 400. A page on
  another site that rebinds its own name to 127.0.0.1 (DNS rebinding) reaches the server with its
  own name in ``Host``, and is refused.
- **Cross-site** (:class:`CrossSite`): a request a browser marks as coming from another site
  (``Sec-Fetch-Site: cross-site`` or ``same-site``, which a page on another port of the same host
  is), or with an ``Origin`` that is not the server's, is answered 403. So an ``<img>`` or a
  ``fetch`` on someone else's page can run nothing here. One exception: opening the page itself,
  as a link in an alert does (a top-level ``GET`` of ``/``).
- **Token** (:class:`TokenRequired`, off loopback): a request needs the session a correct
  ``?token=`` opened (a signed cookie, ``HttpOnly; SameSite=Strict``, which holds no token), or
  ``Authorization: Bearer <token>``. The token leaves the address bar at once (a redirect).
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("privaudit.dashboard")

#: The paths a link from another site may open (the page; its scripts load same-origin after).
PAGES = frozenset({"/", "/index.html"})


async def _answer(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
                  ) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(data)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


class CrossSite:
    """403 for what a browser sends on another site's behalf (see the module's doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        site = headers.get("sec-fetch-site")
        navigation = (scope["method"] == "GET" and scope["path"] in PAGES
                      and headers.get("sec-fetch-mode") == "navigate")
        origin = headers.get("origin")
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
        if not navigation and (site in ("cross-site", "same-site") or (origin is not None and origin != own)):
            log.warning("refused a request from another site: %s %s (Sec-Fetch-Site: %s, Origin: %s)",
                        scope["method"], scope["path"], site, origin)
            await _answer(send, 403, {"error": "refused: this request comes from another site"})
            return
        await self.app(scope, receive, send)


class TokenRequired:
    """A session opened with the token, or the token as a bearer; else 401 (see the module's doc).
    Runs inside Starlette's ``SessionMiddleware``, which signs the session cookie."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode("utf-8")

    def _matches(self, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = scope["session"]
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if given:  # a link with the token: open a session, and take the token out of the address
            if not self._matches(given[-1]):
                await _answer(send, 401, {"error": "wrong token"})
                return
            session.clear()
            session["authorised"] = True
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")

            async def redirect() -> None:
                await send({"type": "http.response.start", "status": 303,
                            "headers": [(b"location", location.encode("latin-1")), (b"cache-control", b"no-store")]})
                await send({"type": "http.response.body", "body": b""})

            await redirect()
            return
        bearer = Headers(scope=scope).get("authorization", "")
        if session.get("authorised") is True or (bearer.startswith("Bearer ") and self._matches(bearer[7:].strip())):
            await self.app(scope, receive, send)
            return
        await _answer(send, 401, {"error": "a token is required: open the link with ?token=... once, or send "
                                           "Authorization: Bearer (PRIVAUDIT_DASHBOARD_TOKEN)"})


class SecurityHeaders:
    """The same headers on every answer: the page may load only its own scripts and styles, never
    be framed, never be sniffed as another type, never be cached."""

    CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"content-security-policy", self.CSP.encode()),
                                      (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"),
                                      (b"referrer-policy", b"no-referrer")]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)
