"""Where notifications go, and what each receiver expects.

- ``alertmanager``: Alertmanager API v2, ``POST {url}/api/v2/alerts`` with a list of alerts (labels,
  annotations, startsAt, generatorURL). Alertmanager then groups, silences, inhibits and pages.
- ``webhook``: one JSON object per group, signed: ``X-Privaudit-Signature: t=<unix>,v1=<hex>`` where
  ``hex`` is HMAC-SHA256 over ``"<t>." + body`` with the sink's secret (as Stripe signs), and
  ``X-Privaudit-Group`` carrying the group key so a receiver can ignore a repeat.
- ``slack``: an incoming-webhook message (``text`` plus ``blocks``).
- ``pagerduty``: Events API v2 ``trigger`` with ``dedup_key`` = the group key.

A send returns ``delivered``, ``rejected`` (a 4xx other than 408/429: the receiver will never take
this payload, so it is recorded and not retried) or raises :class:`SinkUnavailable` (connection
refused, timeout, 5xx, 408, 429: retried with backoff until the receiver takes it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from privaudit.errors import excerpt
from privaudit.settings import redacted_url

from .config import SinkConfig
from .groups import Group


class SinkUnavailable(Exception):
    """The receiver could not take the notification now; try again later."""


class Rejected(Exception):
    """The receiver refused the payload for good (4xx)."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_link(dashboard_url: str, event_id: str) -> str:
    return f"{dashboard_url.rstrip('/')}/#/event/{event_id}"


def summary(group: Group) -> str:
    party = f" ({group.party})" if group.party else ""
    many = f"{group.count} violations" if group.count != 1 else "1 violation"
    return f"[{group.severity}] {group.rule} {group.title}: {many} in {group.service}{party}"


def details(group: Group, dashboard_url: str) -> dict[str, Any]:
    """The fields every sink carries, in one place."""
    ex = group.example
    return {
        "group_key": group.key,
        "rule": group.rule,
        "title": group.title,
        "severity": group.severity,
        "service": group.service,
        "party": group.party,
        "subject_id": ex.get("subject_id"),  # pseudonymous by contract
        "actor_id": ex.get("actor_id"),
        "counterparty": ex.get("counterparty"),
        "policy_version": ex.get("policy_version"),
        "event_id": ex.get("event_id"),
        "occurred_at": ex.get("occurred_at"),
        "message": ex.get("message"),
        "count": group.count,
        "first_seen": _iso(group.first_seen),
        "last_seen": _iso(group.last_seen),
        "window_start": _iso(group.window_start),
        "window_end": _iso(group.window_end),
        "dashboard_url": event_link(dashboard_url, str(ex.get("event_id"))),
    }


def alertmanager_alert(group: Group, dashboard_url: str) -> dict[str, Any]:
    d = details(group, dashboard_url)
    labels = {
        "alertname": "PrivacyPolicyViolation",
        "rule": group.rule,
        "severity": group.severity,
        "service": group.service,
        "party": group.party,
        "group_key": group.key,
    }
    annotations = {
        "summary": summary(group),
        "description": str(d["message"] or ""),
        "title": group.title,
        "subject_id": str(d["subject_id"] or ""),
        "actor_id": str(d["actor_id"] or ""),
        "counterparty": str(d["counterparty"] or ""),
        "policy_version": str(d["policy_version"] or ""),
        "occurred_at": str(d["occurred_at"] or ""),
        "event_id": str(d["event_id"] or ""),
        "count": str(group.count),
        "window": f"{d['window_start']}/{d['window_end']}",
    }
    return {"labels": {k: v for k, v in labels.items() if v}, "annotations": annotations,
            "startsAt": _iso(group.first_seen), "generatorURL": d["dashboard_url"]}


def webhook_body(group: Group, dashboard_url: str) -> dict[str, Any]:
    return {"version": "1", "kind": "privaudit.alert", "summary": summary(group), **details(group, dashboard_url)}


def slack_body(group: Group, dashboard_url: str) -> dict[str, Any]:
    d = details(group, dashboard_url)
    fields = [("Rule", f"{group.rule} {group.title}"), ("Severity", group.severity), ("Service", group.service),
              ("Party", group.party or "-"), ("Subject", d["subject_id"] or "-"), ("Actor", d["actor_id"] or "-"),
              ("Policy version", d["policy_version"] or "-"), ("Event time", d["occurred_at"] or "-"),
              ("Count", str(group.count))]
    return {
        "text": summary(group),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{summary(group)}*\n{d['message'] or ''}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
            {"type": "section",
             "text": {"type": "mrkdwn", "text": f"<{d['dashboard_url']}|Open the event in the dashboard>"}},
        ],
    }


_PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning"}


def pagerduty_body(group: Group, dashboard_url: str, routing_key: str) -> dict[str, Any]:
    d = details(group, dashboard_url)
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": group.key,
        "payload": {
            "summary": summary(group)[:1024],
            "source": group.service,
            "severity": _PD_SEVERITY.get(group.severity, "error"),
            "timestamp": _iso(group.first_seen),
            "component": group.party or None,
            "group": group.service,
            "class": group.rule,
            "custom_details": d,
        },
        "links": [{"href": d["dashboard_url"], "text": "The event in the privaudit dashboard"}],
    }


Poster = Callable[[str, bytes, dict[str, str], float], int]


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST; the HTTP status, or :class:`SinkUnavailable` when nothing answered."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SinkUnavailable(f"{redacted_url(url)}: {excerpt(str(reason), 200, quoted=False)}") from exc


class Sink:
    """One configured receiver. ``send`` takes the groups due for it (Alertmanager takes them in
    one request; the others one request per group) and says, per group key, what became of it."""

    def __init__(self, name: str, config: SinkConfig, dashboard_url: str, post: Poster = http_post) -> None:
        self.name = name
        self.config = config
        self.dashboard_url = dashboard_url
        self.post = post
        self._secret = config.secret() if config.type == "webhook" and config.secret_env else None
        self._routing_key = config.routing_key() if config.type == "pagerduty" else ""

    def send(self, groups: list[Group]) -> dict[str, tuple[str, str]]:
        """``{group key: (status, error)}``: ``delivered``, ``rejected`` or ``retrying``."""
        if self.config.type == "alertmanager":
            alerts = [alertmanager_alert(g, self.dashboard_url) for g in groups]
            outcome = self._post(f"{self.config.url.rstrip('/')}/api/v2/alerts", alerts, {})
            return {g.key: outcome for g in groups}
        out = {}
        for g in groups:
            headers: dict[str, str] = {"X-Privaudit-Group": g.key}
            if self.config.type == "webhook":
                body = webhook_body(g, self.dashboard_url)
            elif self.config.type == "slack":
                body = slack_body(g, self.dashboard_url)
            else:
                body = pagerduty_body(g, self.dashboard_url, self._routing_key)
            out[g.key] = self._post(self.config.url, body, headers)
        return out

    def _post(self, url: str, payload: Any, headers: dict[str, str]) -> tuple[str, str]:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "privaudit-alerts", **self.config.headers,
                   **headers}
        if self._secret is not None:
            headers["X-Privaudit-Signature"] = sign(self._secret, body)
        try:
            status = self.post(url, body, headers, self.config.timeout)
        except SinkUnavailable as exc:
            return "retrying", str(exc)
        if 200 <= status < 300:
            return "delivered", ""
        if 400 <= status < 500 and status not in (408, 429):
            return "rejected", f"HTTP {status}"
        return "retrying", f"HTTP {status}"


def sign(secret: bytes, body: bytes, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: bytes, body: bytes, header: str | bytes, tolerance_s: float = 300.0) -> bool:
    """For receivers (and our tests): the signature is ours and recent. Anything else, whatever
    the header holds (not ASCII, not text, no ``t=``), is False, never an exception."""
    try:
        text = header.decode("ascii") if isinstance(header, bytes) else header
        text.encode("ascii")
        parts = dict(p.split("=", 1) for p in text.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError, UnicodeError, AttributeError, TypeError):
        return False
    if abs(time.time() - t) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, t).encode("ascii"), text.encode("ascii"))
