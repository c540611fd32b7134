"""ClickHouse: the schema (:mod:`.ddl`), its migrations, and the client adapter (:class:`Store`)."""

from .client import Store

__all__ = ["Store"]
