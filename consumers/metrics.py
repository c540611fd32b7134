"""Prometheus metrics of the audit consumer (``--metrics-port``), in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("privaudit_events_total", "Events loaded, by type", ["type"], registry=r)
        self.violations = Counter("privaudit_violations_total", "Violations found, by rule", ["rule"], registry=r)
        self.dlq = Counter("privaudit_dlq_total", "Records sent to the dead-letter topic, by kind", ["kind"], registry=r)
        self.records = Counter("privaudit_records_total", "Kafka records consumed", registry=r)
        self.batch_seconds = Histogram(
            "privaudit_batch_seconds", "Time to decode, check, load, publish and commit one polled batch",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )
        self.lag = Gauge("privaudit_consumer_lag", "Records behind the high watermark", ["partition"], registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
