"""ClickHouse: the schema (:mod:`.ddl`), its migrations, the client adapter (:class:`Store`), the
same store reached from other processes (:mod:`.remote`), statements retried while the store is
unavailable (:mod:`.retry`), and reads that are only reads (:mod:`.readonly`)."""

from .client import Rows, Statements, Store, as_utc, shown_dsn
from .readonly import query_read_only, read_only_statement
from .remote import RemoteSpec, RemoteStore, StoreServer
from .retry import Retrying

__all__ = ["RemoteSpec", "RemoteStore", "Retrying", "Rows", "Statements", "Store", "StoreServer", "as_utc",
           "query_read_only", "read_only_statement", "shown_dsn"]
