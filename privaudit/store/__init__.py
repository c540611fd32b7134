"""ClickHouse: the schema (:mod:`.ddl`), its migrations, and the client adapter (:class:`Store`)."""

from .client import Store, as_utc

__all__ = ["Store", "as_utc"]
