"""The audit consumer: Kafka -> decode -> check -> ClickHouse, exactly once in effect; its hosting;
and the alert dispatcher, the consumer of the violations it publishes.

    config.py     the consumer's settings
    partition.py  what is kept per assigned partition
    batch.py      one partition's records -> rows, dead letters, violations (pure)
    sink.py       a batch's writes: journal, token-deduplicated loads or repairs, publishing, progress
    runner.py     the loop: poll, cut, process, hand over, settle
    bulk.py       PA-012 over all partitions, behind a watermark
    processes.py  consumers in processes of their own, served the store by the host
    service.py    running N consumers and the bulk stage (``privaudit consume`` / ``run``)
    metrics.py    Prometheus metrics
    alerting/     the alert dispatcher: privaudit.violations -> Alertmanager, webhooks, Slack, PagerDuty
"""

from .bulk import BulkStage
from .config import ConsumerConfig
from .runner import AuditConsumer, Totals
from .service import RunResult, run_consumers

__all__ = ["AuditConsumer", "BulkStage", "ConsumerConfig", "RunResult", "Totals", "run_consumers"]
