"""Stopping a process cleanly: SIGTERM and SIGINT set one event that every loop watches, and a
thread beside the main work that fails stops the whole process rather than dying unseen.

    stop = threading.Event()
    install_stop_signals(stop)        # SIGTERM / SIGINT: finish the batch in hand, commit, exit 0
    alerts = Companion(dispatcher.run, stop, name="alerts", stop=stop)
    alerts.start(); ...; alerts.join(); alerts.raise_error()
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (only the main thread may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


class Companion(threading.Thread):
    """A thread beside the consumers (the alert dispatcher): if it fails, ``stop_all`` is set so the
    whole process stops, and :meth:`raise_error` re-raises its error on the main thread rather
    than letting it die unseen while the consumers go on."""

    def __init__(self, target: Any, stop_all: threading.Event, *, name: str, **kwargs: Any) -> None:
        super().__init__(name=name)
        self._work, self._stop_all, self._kwargs = target, stop_all, kwargs
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work(**self._kwargs)
        except BaseException as exc:  # re-raised on the main thread by raise_error()
            self.error = exc
            self._stop_all.set()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error
