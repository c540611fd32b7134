"""Real receivers on loopback, for the demo, the tests and the latency benchmark.

- :class:`LocalAlertmanager`: Debian's ``prometheus-alertmanager`` binary, started with a config
  that routes every alert to a webhook receiver (no clustering, storage in a temporary directory).
- :class:`WebhookReceiver`: a small HTTP server recording every POST (time, path, headers, JSON
  body); it can be taken down and brought back on the same port, as a receiver in an outage.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from privaudit.bus.broker import free_port
from privaudit.errors import ConfigError

ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")


@dataclass
class Received:
    at: float  # time.time() when it arrived
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


class WebhookReceiver:
    def __init__(self, port: int | None = None, status: int = 200) -> None:
        self.port = port or free_port()
        self.status = status
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with receiver._lock:
                    receiver.received.append(Received(time.time(), self.path, dict(self.headers), body, raw))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"receiver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def __enter__(self) -> WebhookReceiver:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def alertmanager_binary() -> str:
    for name in ALERTMANAGER_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("Alertmanager is not installed: apt-get install prometheus-alertmanager")


class LocalAlertmanager:
    """``with LocalAlertmanager(receiver_url) as am: am.url`` -- routes everything to the receiver."""

    def __init__(self, receiver_url: str, *, group_wait: str = "0s", log: Path | None = None) -> None:
        self.port = free_port()
        self.receiver_url = receiver_url
        self.group_wait = group_wait
        self.log = log
        self._dir = Path(tempfile.mkdtemp(prefix="privaudit-am-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalAlertmanager:
        config = self._dir / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: hook\n"
            "  group_by: ['...']\n"  # every distinct label set is its own notification
            f"  group_wait: {self.group_wait}\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 4h\n"
            "receivers:\n"
            "  - name: hook\n"
            "    webhook_configs:\n"
            f"      - url: '{self.receiver_url}/alertmanager'\n"
            "        send_resolved: false\n"
        )
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed by the child's exit
        self._proc = subprocess.Popen(
            [alertmanager_binary(), f"--config.file={config}", f"--storage.path={self._dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=out, stderr=out,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self._proc.returncode} (log: {self.log})")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("alertmanager did not become ready in 30 s")

    def alerts(self) -> list[dict[str, Any]]:
        """What its API v2 holds now."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            alerts: list[dict[str, Any]] = json.loads(response.read())
        return alerts

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalAlertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
