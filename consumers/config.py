"""The audit consumer's settings, fixed when it starts (``privaudit consume`` / ``run`` options)."""

from __future__ import annotations

from dataclasses import dataclass, field

from privaudit.bus import ClientName
from privaudit.schemas import Codec, SchemaSet
from privaudit.schemas.codec import DEFAULT_MAX_RECORD_BYTES
from privaudit.schemas.schema_registry import SchemaRegistry
from privaudit.settings import DEFAULT_CLOCK_SKEW_S, TOPIC_EVENTS

from .seen import DEFAULT_WINDOW


@dataclass(frozen=True)
class ConsumerConfig:
    bootstrap: str
    group: str = "privaudit-audit"
    client: ClientName = "kafka-python"
    topic: str = TOPIC_EVENTS
    max_records: int = 20_000  # records gathered over polls before one batch is processed
    linger_s: float = 0.25  # ... or this long after the first record of the batch
    poll_timeout_s: float = 0.5
    bulk_every_s: float = 1.0  # the bulk stage scans at most this often
    bulk_idle_s: float = 2.0  # caught up and idle this long: the bulk stage scans to the end
    # A member caught up and idle says so in ``caught_up`` this often; the bulk stage trusts what
    # was said within three times this (a member that died stops counting then).
    attest_every_s: float = 2.0
    # The topic's id is asked this often while reading: a new one (the topic re-created, or its
    # broker back empty) begins a new life of its offsets (:mod:`.lives`).
    life_check_s: float = 10.0
    session_timeout_ms: int = 6000
    name: str = "consumer-1"
    # Python's cyclic collector at its default threshold runs hundreds of times per batch and walks
    # the checker state each time; the consumer's objects are acyclic records, so fewer passes free
    # the same memory (docs/benchmarks.md, "garbage collector"). ``None`` leaves the interpreter's
    # setting alone (for a host that tunes it).
    gc_threshold: int | None = 50_000
    # Checker state held per partition: at most this many subjects, least recently seen dropped
    # first and reloaded from ``subject_state`` when they come back (None: hold every subject, all
    # restored at assignment). Bounds the consumer's memory whatever the population.
    max_subjects: int | None = 50_000
    # The Confluent wire format's schema ids, when a registry assigned others than the shipped table
    # (a JSON file {"<id>": "<type>@<version>"}; None: the shipped one, unless a registry is given).
    confluent_ids: str | None = None
    # A schema registry's URL, asked for the ids no table names (the shipped table is then not used).
    schema_registry: str | None = None
    # An event dated later than the wall clock plus this is a contract error (a dead letter).
    clock_skew_s: float = DEFAULT_CLOCK_SKEW_S
    # A record larger than this is a dead letter, refused before it is decoded.
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    # How many offsets back each partition looks for an event id it stored (repeats, rewrites:
    # consumers/seen.py); ~200 bytes of memory an offset.
    dedup_window: int = DEFAULT_WINDOW
    # The private key signing the ledger's heads, as PEM (privaudit/evidence/keys.py; crosses into
    # consumer processes as this text). None: heads unsigned, which `privaudit verify` reports.
    ledger_key_pem: bytes | None = field(default=None, repr=False)

    def codec(self) -> Codec:
        """The decoder these settings ask for (a schema registry, another id table)."""
        if self.confluent_ids is None and self.schema_registry is None:
            return Codec(max_record_bytes=self.max_record_bytes)
        registry = SchemaRegistry(self.schema_registry) if self.schema_registry else None
        return Codec(SchemaSet(confluent_ids=self.confluent_ids, registry=registry),
                     max_record_bytes=self.max_record_bytes)
