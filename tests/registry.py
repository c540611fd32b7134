"""A stand-in for a Confluent schema registry: the part of its REST API that serializers and
privaudit use, over real HTTP on a free loopback port (no registry can be installed here: Confluent's
is Java, and Karapace is not on this machine's package index).

    with StandInRegistry() as registry:
        registry.url                      # http://127.0.0.1:PORT
        registry.add(schema_json)         # an id, as a registration would give it
        registry.down = True              # answer 503 until set back
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandInRegistry:
    def __init__(self, *, first_id: int = 101, credentials: tuple[str, str] | None = None) -> None:
        self.schemas: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path), as received
        self.down = False
        self._next_id = first_id
        self._lock = threading.Lock()
        self._credentials = credentials
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, schema: str | dict[str, Any], schema_type: str | None = None, **extra: Any) -> int:
        """Register ``schema`` (the same text twice gets the same id, as a registry does)."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        with self._lock:
            for schema_id, entry in self.schemas.items():
                if entry["schema"] == text and entry.get("schemaType") == schema_type:
                    return schema_id
            schema_id, self._next_id = self._next_id, self._next_id + 1
            entry = {"schema": text, **extra}
            if schema_type is not None:
                entry["schemaType"] = schema_type
            self.schemas[schema_id] = entry
            return schema_id

    def lookups(self, schema_id: int) -> int:
        return self.requests.count(("GET", f"/schemas/ids/{schema_id}"))

    def __enter__(self) -> StandInRegistry:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(registry: StandInRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _refused(self) -> bool:
            path = self.path.split("?")[0]
            registry.requests.append((self.command, path))
            if registry.down:
                self._answer(503, {"error_code": 50003, "message": "Error while forwarding the request to the leader"})
                return True
            if registry._credentials is not None:
                expected = "Basic " + base64.b64encode(":".join(registry._credentials).encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self._answer(401, {"error_code": 401, "message": "Unauthorized"})
                    return True
            return False

        def do_GET(self) -> None:
            if self._refused():
                return
            path = self.path.split("?")[0]
            if path == "/config":
                self._answer(200, {"compatibilityLevel": "BACKWARD"})
                return
            found = re.fullmatch(r"/schemas/ids/(\d+)", path)
            if found is None:
                self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
                return
            entry = registry.schemas.get(int(found.group(1)))
            if entry is None:
                self._answer(404, {"error_code": 40403, "message": f"Schema {found.group(1)} not found"})
            else:
                self._answer(200, entry)

        def do_POST(self) -> None:
            if self._refused():
                return
            path = self.path.split("?")[0]
            found = re.fullmatch(r"/subjects/([^/]+)/versions", path)
            if found is None:
                self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            schema_type = body.get("schemaType")
            schema_id = registry.add(body["schema"], None if schema_type in (None, "AVRO") else schema_type)
            self._answer(200, {"id": schema_id})

    return Handler
