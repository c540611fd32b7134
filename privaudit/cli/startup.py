"""Start-up of the dependencies a long-running command needs: the schema registry, the store
(migrated) and the pipeline's topics, each waited for a while if it is not up yet."""

from __future__ import annotations

import threading

from privaudit.backoff import with_backoff
from privaudit.bus import ensure_topics
from privaudit.errors import RegistryUnavailable, StoreUnavailable
from privaudit.schemas.schema_registry import SchemaRegistry
from privaudit.store import Store, shown_dsn


def open_dependencies(dsn: str, bootstrap: str | None, *, stop: threading.Event, wait_s: float,
                      retention_days: int | None = None, partitions: int = 6,
                      schema_registry: str | None = None) -> Store:
    """At start-up: the schema registry, if given, reached once; the store, migrated
    (``retention_days`` None keeps the store's TTL setting); and (given ``bootstrap``) the
    pipeline's topics. A registry, ClickHouse server or broker not reachable yet (a restart,
    services started together) is tried again with growing pauses for up to ``wait_s``, each
    failure logged; then the last error is raised. An embedded store opens or fails at once:
    nothing else can bring it up."""
    if schema_registry is not None:
        registry = SchemaRegistry(schema_registry)
        with_backoff(registry.probe, retry_on=RegistryUnavailable, stop=stop,
                     what=f"reaching the schema registry at {registry.shown}", give_up_after_s=wait_s)

    def store_up() -> Store:
        store = Store.connect(dsn)
        try:
            store.migrate(retention_days)
        except BaseException:
            store.close()
            raise
        return store

    store = with_backoff(store_up, retry_on=StoreUnavailable, stop=stop, what=f"opening ClickHouse at {shown_dsn(dsn)}",
                         give_up_after_s=wait_s)
    if bootstrap is not None:
        try:
            ensure_topics(bootstrap, partitions, timeout_s=wait_s, stop=stop)
        except BaseException:
            store.close()
            raise
    return store
