"""Kafka: the client interface (two implementations), the local broker, topic administration."""

from .broker import LocalBroker, ensure_topics, free_port
from .clients import ClientName, Consumer, Producer, Record, make_consumer, make_producer, publish

__all__ = ["ClientName", "Consumer", "LocalBroker", "Producer", "Record", "ensure_topics", "free_port", "make_consumer",
           "make_producer", "publish"]
