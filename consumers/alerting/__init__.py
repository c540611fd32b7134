"""Alerts to on-call: the violations topic, grouped and routed to Alertmanager, webhooks, Slack and
PagerDuty, with a history in ClickHouse. See :mod:`.dispatcher` for the guarantees."""

from .config import AlertingConfig, load_alerting, parse_alerting
from .dispatcher import Dispatcher, DispatchTotals
from .groups import Group, group_key, group_of
from .history import ClickHouseHistory, MemoryHistory
from .sinks import Sink, sign, verify

__all__ = [
    "AlertingConfig", "ClickHouseHistory", "DispatchTotals", "Dispatcher", "Group", "MemoryHistory", "Sink",
    "group_key", "group_of", "load_alerting", "parse_alerting", "sign", "verify",
]
