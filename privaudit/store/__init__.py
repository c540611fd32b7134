"""ClickHouse: the schema (:mod:`.ddl`), its migrations, the client adapter (:class:`Store`), and
the same store reached from other processes (:mod:`.remote`)."""

from .client import Store, as_utc
from .remote import RemoteSpec, RemoteStore, StoreServer

__all__ = ["RemoteSpec", "RemoteStore", "Store", "StoreServer", "as_utc"]
