"""The consumers' statements, sent again while the store is unavailable: a down ClickHouse is
waited for, never skipped and never a reason to drop what was read.

    store = Retrying(Store.connect(dsn), stop, on_retry=metrics.store_retries.inc)

A statement that fails with :class:`StoreUnavailable` (no connection, a broken response, or a
"not now" from the server such as TOO_MANY_PARTS) is sent again with :func:`privaudit.backoff.with_backoff`
(after 0.5 s, then 1, 2, 4 ... up to 30 s between attempts, for as long as it takes, each failure
logged and counted). Any other :class:`StoreError` (a statement that would fail again) is raised at
once. When ``stop`` is set (SIGTERM) the wait ends and the error is raised: the consumer exits
without committing, and the next run reads that batch again.

Sending a consumer's statement again is safe even when the failure came after the store applied
it (a response lost on the way back):

- queries read;
- the batch's inserts (and the bulk stage's) carry deduplication tokens, and those tables keep a
  deduplication window, which also drops an insert without a token that repeats the same block
  (a repair's missing rows);
- the journal (``batches``) keeps the first of two plans of one range; ``progress`` and
  ``caught_up`` keep the latest row per partition; the usage view counts distinct ids.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from privaudit.backoff import FIRST_DELAY_S, MAX_DELAY_S, with_backoff
from privaudit.errors import StoreUnavailable

from .client import BuildsInserts, InsertData, Rows, Store
from .remote import RemoteStore

T = TypeVar("T")


class Retrying(BuildsInserts):
    """A :class:`Store` (or :class:`RemoteStore`) whose statements are retried while it is
    unavailable (a :class:`~.client.Statements`, as the store is)."""

    def __init__(self, store: Store | RemoteStore, stop: threading.Event, *, first_delay_s: float = FIRST_DELAY_S,
                 max_delay_s: float = MAX_DELAY_S, on_retry: Callable[[], None] | None = None) -> None:
        self.store = store
        self.dsn, self.database, self.cluster = store.dsn, store.database, store.cluster
        self.stop = stop
        self.first_delay_s, self.max_delay_s = first_delay_s, max_delay_s
        self.on_retry = on_retry

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self._retry("a store command", partial(self.store.command, sql, parameters))

    def query(self, sql: str, parameters: dict[str, Any] | None = None, *,
              readonly: bool = False) -> tuple[list[str], Rows]:
        return self._retry("a store query", partial(self.store.query, sql, parameters, readonly=readonly))

    def insert_data(self, table: str, data: InsertData, *, token: str | None = None) -> None:
        self._retry(f"an insert into {table}", partial(self.store.insert_data, table, data, token=token))

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        return with_backoff(call, retry_on=StoreUnavailable, stop=self.stop, what=what, on_retry=self.on_retry,
                            first_delay_s=self.first_delay_s, max_delay_s=self.max_delay_s)
