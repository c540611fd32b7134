"""The audit contract between the services that emit events and the consumers that audit them.

Producers and consumers both import this package; it imports neither. It holds the Avro schemas
(``avro/``, released versions under ``released/``), the pydantic models that validate events at
the edges, and the codec that turns events into framed Avro bytes and back.
"""

from .codec import Codec, Framing
from .models import (
    EVENT_ADAPTER,
    MODELS,
    AccessEvent,
    ConsentEvent,
    Event,
    MembershipEvent,
    ShareEvent,
    TransferEvent,
)
from .registry import EVENT_TYPES, SchemaSet

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "MODELS",
    "AccessEvent",
    "Codec",
    "ConsentEvent",
    "Event",
    "Framing",
    "MembershipEvent",
    "SchemaSet",
    "ShareEvent",
    "TransferEvent",
]
