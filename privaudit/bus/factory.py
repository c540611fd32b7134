"""Making a consumer or producer of either client: ``make_consumer("confluent", ...)``. The client
modules are imported when asked for (confluent-kafka is an optional extra)."""

from __future__ import annotations

from typing import Any

from .clients import ClientName, Consumer, Listener, Producer


def make_consumer(
    client: ClientName,
    bootstrap: str,
    group: str,
    topics: list[str],
    *,
    on_assign: Listener,
    on_revoke: Listener,
    session_timeout_ms: int = 6000,
    client_id: str = "privaudit-consumer",
) -> Consumer:
    """A group member subscribed to ``topics``, auto-commit off, reading from the start when new."""
    if client == "confluent":
        from .confluent import ConfluentConsumer

        return ConfluentConsumer(bootstrap, group, topics, on_assign, on_revoke, session_timeout_ms, client_id)
    from .kafka_python import KafkaPythonConsumer

    return KafkaPythonConsumer(bootstrap, group, topics, on_assign, on_revoke, session_timeout_ms, client_id)


def make_producer(client: ClientName, bootstrap: str, **options: Any) -> Producer:
    """An idempotent-as-possible producer: ``acks=all``, retries, one request in flight (ordering)."""
    if client == "confluent":
        from .confluent import ConfluentProducer

        return ConfluentProducer(bootstrap, **options)
    from .kafka_python import KafkaPythonProducer

    return KafkaPythonProducer(bootstrap, **options)
