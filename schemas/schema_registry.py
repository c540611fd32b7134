"""A Confluent-compatible schema registry, asked for the writer schema of a Confluent-framed record.

A record in the Confluent wire format names its writer schema by the id a registry gave it, and
a deployment's registry gives its own ids. With ``--schema-registry URL`` the consumers ask it
(``GET {URL}/schemas/ids/{id}``: Confluent Schema Registry, Karapace, Redpanda and Apicurio's
compatible API answer it) for an id that no table names, once per id and process. What the answer
means is :meth:`privaudit.schemas.SchemaSet.confluent_writer`'s business; this module only talks
HTTP and says which failures are worth waiting out:

- 200: the registry's answer (``schema``, ``schemaType``, ``references``);
- 404 with the registry's "schema not found" (error code 40403): no such id (``None``); the
  record goes to the dead-letter topic, with that reason;
- no answer, a timeout, 408, 429 or a 5xx: :class:`RegistryUnavailable`, which the consumer
  waits out (with backoff, as for the store): a record is never dead-lettered because the
  registry is down;
- 401, 403, another 404 or another refusal: :class:`RegistryError`, which stops the consumer
  with one line (wrong credentials or an address that is not a registry would be refused again).

Credentials go in the URL (``https://user:secret@registry:8081``) and are sent as HTTP basic
authentication; the password is masked wherever the URL is printed.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from privaudit.errors import ConfigError, RegistryError, RegistryUnavailable
from privaudit.settings import shown_url

_ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"
_WAIT_OUT = {408, 429}  # with every 5xx: the same request may succeed later
_SCHEMA_NOT_FOUND = 40403


class SchemaRegistry:
    """The REST API of one schema registry, read-only."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"schema registry {shown_url(url)!r}: expected an http:// or https:// URL")
        self.shown = shown_url(url)
        self.timeout_s = timeout_s
        self._headers = {"Accept": _ACCEPT}
        if parts.username is not None:
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
        netloc = parts.netloc.rpartition("@")[2]
        self._base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    def schema(self, schema_id: int) -> dict[str, Any] | None:
        """The registry's answer for ``schema_id``, or ``None`` when it has no such id."""
        answer = self._get(f"/schemas/ids/{int(schema_id)}")
        if answer is None:
            return None
        if not isinstance(answer, dict) or not isinstance(answer.get("schema"), str):
            raise RegistryError(f"schema registry at {self.shown}: the answer for schema id {schema_id} "
                                "has no schema (is this address a schema registry?)")
        return answer

    def probe(self) -> None:
        """Reach the registry once (its global compatibility setting), as a start-up check."""
        self._get("/config")

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(self._base + path, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            code, message = _error_of(exc)
            if exc.code == 404 and code == _SCHEMA_NOT_FOUND:
                return None
            detail = f" ({message})" if message else ""
            if exc.code == 404:
                raise RegistryError(f"schema registry at {self.shown}: GET {path} is not found{detail} "
                                    "(is this address a schema registry?)") from exc
            if exc.code >= 500 or exc.code in _WAIT_OUT:
                raise RegistryUnavailable(f"schema registry at {self.shown}: HTTP {exc.code} "
                                          f"for GET {path}{detail}") from exc
            raise RegistryError(f"schema registry at {self.shown} refused GET {path}: HTTP {exc.code}{detail}") from exc
        except (OSError, http.client.HTTPException) as exc:  # no connection, a timeout, an answer cut off
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            raise RegistryUnavailable(f"cannot reach the schema registry at {self.shown}: {reason}") from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise RegistryError(f"schema registry at {self.shown}: GET {path} did not answer JSON "
                                "(is this address a schema registry?)") from exc


def _error_of(exc: urllib.error.HTTPError) -> tuple[int | None, str]:
    """The registry's own ``error_code`` and ``message`` of an error answer, if it gave them."""
    try:
        answer = json.loads(exc.read())
    except Exception:  # an error page that is not the registry's JSON: the status says enough
        return None, ""
    if not isinstance(answer, dict):
        return None, ""
    code, message = answer.get("error_code"), answer.get("message")
    return (code if isinstance(code, int) else None), (message if isinstance(message, str) else "")
