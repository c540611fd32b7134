"""Waiting for a dependency that is down: the same call again, with growing pauses, until it
succeeds or the process is told to stop. Never a skip: what could not be done is not committed.

    result = with_backoff(lambda: store.query(sql), retry_on=StoreUnavailable, stop=stop,
                          what="a query", on_retry=metrics.store_retries.inc)

Pauses of 0.5 s, then 1, 2, 4 ... up to 30 s; each failure is logged as a warning and counted
(``on_retry``), and so is the first success after failures. When ``stop`` is set (SIGTERM) the
wait ends and the error is raised, saying so; so it does when ``give_up_after_s`` is given and the
next attempt would come later than that (at start-up, where a dependency that never comes is more
likely a wrong address than an outage).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("privaudit.backoff")

T = TypeVar("T")

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0


def with_backoff(call: Callable[[], T], *, retry_on: type[Exception], stop: threading.Event, what: str,
                 on_retry: Callable[[], None] | None = None, first_delay_s: float = FIRST_DELAY_S,
                 max_delay_s: float = MAX_DELAY_S, give_up_after_s: float | None = None,
                 except_for: tuple[type[Exception], ...] = ()) -> T:
    """``call()``'s result, once it does not raise ``retry_on`` (one of our errors, made from one
    message); any other error, and one of ``except_for`` (subclasses of ``retry_on`` that waiting
    cannot mend), is raised at once."""
    delay, failures = first_delay_s, 0
    began = time.monotonic()
    while True:
        try:
            result = call()
        except except_for:
            raise
        except retry_on as exc:
            failures += 1
            if on_retry is not None:
                on_retry()
            if stop.is_set():
                raise type(exc)(f"{exc} (stopping: what was not committed is read again by the next run)") from exc
            waited = time.monotonic() - began
            if give_up_after_s is not None and waited + delay > give_up_after_s:
                raise type(exc)(f"{exc} (still failing after {failures} attempt(s) over {waited:.0f} s; "
                                "giving up)") from exc
            log.warning("%s failed (%s); attempt %d, next in %.1f s", what, exc, failures, delay)
            if stop.wait(delay):
                raise type(exc)(f"{exc} (stopped while waiting: what was not committed is read again by the "
                                "next run)") from exc
            delay = min(delay * 2, max_delay_s)
            continue
        if failures:
            log.warning("%s succeeded after %d failed attempt(s)", what, failures)
        return result
