"""Wiring a dispatcher to the bus, the store and the configured sinks."""

from __future__ import annotations

import logging

from privaudit.bus import ClientName, make_consumer
from privaudit.settings import TOPIC_VIOLATIONS
from privaudit.store import Statements

from .config import AlertingConfig
from .dispatcher import Dispatcher
from .history import ClickHouseHistory
from .sinks import Sink

log = logging.getLogger("privaudit.alerts")

DEFAULT_GROUP = "privaudit-alerts"


def make_dispatcher(config: AlertingConfig, bootstrap: str, store: Statements, *, client: ClientName = "kafka-python",
                    group: str = DEFAULT_GROUP) -> Dispatcher:
    sinks = {name: Sink(name, sink, config.dashboard_url) for name, sink in config.sinks.items()}
    for name, sink in config.sinks.items():
        if sink.unsigned:
            log.warning("webhook sink %s sends unsigned notifications (unsigned: true): a receiver cannot tell them "
                        "from forged ones", name)
    holder: list[Dispatcher] = []
    consumer = make_consumer(
        client, bootstrap, group, [TOPIC_VIOLATIONS],
        on_assign=lambda tps: None,
        on_revoke=lambda tps: holder[0].revoked(tps) if holder else None,
        client_id="privaudit-alerts",
    )
    dispatcher = Dispatcher(config, consumer, ClickHouseHistory(store), sinks)
    holder.append(dispatcher)
    return dispatcher
