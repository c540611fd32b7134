"""The audit consumer: Kafka -> decode -> check -> ClickHouse, exactly once in effect.

    batch.py    one partition's records -> rows, dead letters, violations (pure)
    sink.py     the batch journal, token-deduplicated loads, state restore
    bulk.py     PA-012 over all partitions, behind a watermark
    runner.py   the loop: poll, cut, process, plan, load, publish, commit
    metrics.py  Prometheus metrics
"""

from .bulk import BulkStage
from .runner import AuditConsumer, ConsumerConfig, Totals

__all__ = ["AuditConsumer", "BulkStage", "ConsumerConfig", "Totals"]
