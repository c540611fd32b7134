"""Kafka: the client interface (two implementations), the local broker, topic administration."""

from .broker import LocalBroker, ensure_topics, free_port
from .clients import TP, ClientName, Consumer, Headers, Message, Producer, Record, publish
from .factory import make_consumer, make_producer

__all__ = ["TP", "ClientName", "Consumer", "Headers", "LocalBroker", "Message", "Producer", "Record", "ensure_topics",
           "free_port", "make_consumer", "make_producer", "publish"]
