"""ClickHouse: the schema (:mod:`.ddl`), its migrations, the client adapter (:class:`Store`), and
the same store reached from other processes (:mod:`.remote`), and statements retried while the
store is unavailable (:mod:`.retry`)."""

from .client import Rows, Statements, Store, as_utc, shown_dsn
from .remote import RemoteSpec, RemoteStore, StoreServer
from .retry import Retrying

__all__ = ["RemoteSpec", "RemoteStore", "Retrying", "Rows", "Statements", "Store", "StoreServer", "as_utc",
           "shown_dsn"]
