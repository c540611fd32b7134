"""Prometheus metrics of the audit consumer (``--metrics-port``), in a registry of its own."""

from __future__ import annotations

from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: One recorded metric operation: (metric, label values, method, argument).
Op = tuple[str, tuple[str, ...], str, float]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("privaudit_events_total", "Events loaded, by type", ["type"], registry=r)
        self.violations = Counter("privaudit_violations_total", "Violations found, by rule", ["rule"], registry=r)
        self.dlq = Counter("privaudit_dlq_total", "Records sent to the dead-letter topic, by kind", ["kind"],
                           registry=r)
        self.records = Counter("privaudit_records_total", "Kafka records consumed", registry=r)
        self.batch_seconds = Histogram(
            "privaudit_batch_seconds", "Time to decode, check, load, publish and commit one polled batch",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )
        self.lag = Gauge("privaudit_consumer_lag", "Records behind the high watermark", ["partition"], registry=r)
        self.store_retries = Counter(
            "privaudit_store_retries_total", "Store statements that failed as unavailable and were retried", registry=r)
        self.publish_retries = Counter(
            "privaudit_publish_retries_total",
            "Publishes of dead letters and violations retried while Kafka refused them",
            registry=r)
        self.registry_retries = Counter(
            "privaudit_registry_retries_total", "Schema registry lookups retried while the registry could not answer",
            registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)


class RelayMetrics:
    """The same metrics as :class:`Metrics`, recorded as operations for another process to apply
    (:meth:`replay`): a consumer process has no endpoint of its own; the host serves them all."""

    def __init__(self) -> None:
        self.ops: deque[Op] = deque()  # appends are thread-safe
        ops = self.ops
        self.events, self.violations, self.dlq = _Relay(ops, "events"), _Relay(ops, "violations"), _Relay(ops, "dlq")
        self.records, self.lag = _Relay(ops, "records"), _Relay(ops, "lag")
        self.batch_seconds = _Relay(ops, "batch_seconds")
        self.store_retries = _Relay(ops, "store_retries")
        self.publish_retries = _Relay(ops, "publish_retries")
        self.registry_retries = _Relay(ops, "registry_retries")

    def drain(self) -> list[Op]:
        out = []
        while self.ops:
            out.append(self.ops.popleft())
        return out

    @staticmethod
    def replay(metrics: Metrics, ops: list[Op]) -> None:
        for name, labels, op, value in ops:
            metric = getattr(metrics, name)
            if labels:
                metric = metric.labels(*labels)
            getattr(metric, op)(value)


class _Relay:
    def __init__(self, ops: deque[Op], name: str, labels: tuple[str, ...] = ()) -> None:
        self._ops, self._name, self._labels = ops, name, labels

    def labels(self, *values: str) -> _Relay:
        return _Relay(self._ops, self._name, values)

    def inc(self, amount: float = 1) -> None:
        self._ops.append((self._name, self._labels, "inc", amount))

    def observe(self, value: float) -> None:
        self._ops.append((self._name, self._labels, "observe", value))

    def set(self, value: float) -> None:
        self._ops.append((self._name, self._labels, "set", value))
