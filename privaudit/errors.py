"""Errors raised by privaudit, translated where they enter.

Every error a user can cause derives from one root, so the CLI can print one line and exit 2
instead of a traceback::

    PrivauditError
    ├── PolicyError          a policy file is unreadable or invalid (names file and field path)
    ├── SchemaError          an Avro schema file is unreadable or invalid
    ├── DecodeError          bytes are not a valid event (framing, unknown schema, bad datum)
    ├── EventError           a decoded or parsed event breaks the contract (pydantic)
    ├── IdentifierError      an identifier cannot be pseudonymised (empty, or only whitespace)
    ├── NoPolicyInForce      an event happened before the first policy version took effect
    ├── ConfigError          a setting is invalid (e.g. a retention shorter than the law allows)
    ├── StoreError           ClickHouse refused or failed a statement
    │   ├── QueryRefused     a statement given to a read path is not a read (SQL endpoint, `sql`)
    │   ├── StoreBusy        the embedded store's directory is held by another process
    │   └── StoreUnavailable ClickHouse cannot be reached, or refuses work for now (retried)
    ├── BrokerError          the Kafka broker cannot be reached or refused a request
    │   └── CommitRefused    the group moved on: offsets not committed, the next owner replays
    ├── RegistryError        the schema registry refused us (credentials, the URL is not a registry)
    │   └── RegistryUnavailable  it cannot be reached or fails for now (retried)
    └── ConsumerProcessFailed  a consumer process (``--processes``) failed or was killed

Library errors (yaml, fastavro, pydantic) are wrapped with ``raise ... from exc``. A message
never quotes more of a value than :func:`excerpt` lets through: a reason travels in logs, Kafka
headers and tables, and a 10 MB value must not make it 10 MB.
"""

from __future__ import annotations

#: The most characters of one reason kept anywhere (a dead letter, a ``check`` error line).
REASON_LIMIT = 1024


def excerpt(value: object, limit: int = 80, *, quoted: bool = True) -> str:
    """``value`` on one line for a message: its ``repr`` (or, with ``quoted=False``, its text),
    cut to ``limit`` characters with how much was left out."""
    text = repr(value) if quoted else " ".join(str(value).split())
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


class PrivauditError(Exception):
    """Root of every error privaudit raises on purpose."""


class PolicyError(PrivauditError):
    """A policy file is refused: ``FILE: path.to[0].field: what is wrong``."""

    def __init__(self, source: str, path: str, message: str, *, more: int = 0) -> None:
        self.source = source
        self.path = path
        self.message = message
        self.more = more
        where = f"{source}: {path}: " if path else f"{source}: "
        tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"{where}{message}{tail}")


class SchemaError(PrivauditError):
    """An Avro schema file is missing, unreadable or not a valid schema."""


class DecodeError(PrivauditError):
    """Bytes could not be decoded into an event; the reason is the message."""


class EventError(PrivauditError):
    """An event breaks the contract (a field missing, of the wrong type or out of range)."""


class IdentifierError(PrivauditError):
    """An identifier cannot be pseudonymised: nothing is left of it (empty, or only whitespace)."""


class NoPolicyInForce(PrivauditError):
    """No version of the policy was in force when the event happened."""


class ConfigError(PrivauditError):
    """A setting is invalid; the message names the setting and the allowed values."""


class StoreError(PrivauditError):
    """ClickHouse refused or failed a statement."""


class QueryRefused(StoreError):
    """A statement given to a read path (the dashboard's SQL endpoint, ``privaudit sql``) is not a
    read: it could write a file, change the store or touch the server's state."""


class StoreBusy(StoreError):
    """The embedded store's data directory is held by another process (one process per directory)."""


class StoreUnavailable(StoreError):
    """ClickHouse cannot be reached, or refuses work for now (too many parts, memory, a lost
    keeper, a timeout): the same statement may succeed later. The consumers retry it."""


class BrokerError(PrivauditError):
    """The Kafka broker cannot be reached, or refused a request."""


class CommitRefused(BrokerError):
    """The group moved on (a rebalance, or this member dropped for not polling in time, as when it
    waited long for the store): its offsets were not committed. Nothing is lost: whoever owns the
    partitions next replays the journal's planned ranges from the committed offsets."""


class RegistryError(PrivauditError):
    """The schema registry (``--schema-registry``) refused a request that would be refused again:
    wrong credentials, or an address that is not a schema registry."""


class RegistryUnavailable(RegistryError):
    """The schema registry cannot be reached, or failed for now (a 5xx, a timeout): the consumers
    wait for it, as for the store; a record is never sent to the DLQ because of it."""


class ConsumerProcessFailed(PrivauditError):
    """A consumer process (``--processes``) stopped with an error or was killed; names which and how."""
