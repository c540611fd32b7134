"""The routing file, ``alerting.yaml``: sinks, routes, grouping.

    dashboard_url: http://127.0.0.1:8750      # links in notifications point here
    group_window: 1h                          # one notification per group key per window
    group_wait: 1s                            # gather a group's first violations before notifying
    sinks:
      oncall:   {type: alertmanager, url: http://127.0.0.1:9093}
      audit:    {type: webhook, url: https://hooks.example/privaudit, secret_env: PRIVAUDIT_WEBHOOK_SECRET}
      chat:     {type: slack, url: https://hooks.slack.com/services/T/B/X}
      pager:    {type: pagerduty, url: https://events.pagerduty.com/v2/enqueue, routing_key_env: PD_ROUTING_KEY}
    routes:                                   # every matching route's sinks receive the group
      - match: {severity: [critical]}
        sinks: [oncall, pager]
      - match: {rule: [PA-010, PA-011], service: [support]}
        sinks: [audit]

A route's ``match`` keys are ``severity``, ``rule`` and ``service``, each a list of accepted values;
a missing key accepts everything. Secrets are named by environment variable, never written in the
file. A bad file is refused with the path of the bad field, as policy files are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from privaudit.checker.rules import RULES
from privaudit.errors import ConfigError
from privaudit.schemas.models import format_loc
from privaudit.settings import parse_duration

SinkType = Literal["alertmanager", "webhook", "slack", "pagerduty"]
Seconds = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SinkConfig(_Strict):
    type: SinkType
    url: str
    timeout: Seconds = 5.0
    secret_env: str | None = None  # webhook: HMAC-SHA256 key, from this environment variable
    unsigned: StrictBool = False  # webhook: sent without a signature, on purpose (a receiver that checks none)
    routing_key_env: str | None = None  # pagerduty: the integration's routing key, from this variable
    headers: dict[str, str] = {}

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @model_validator(mode="after")
    def _needs(self) -> SinkConfig:
        if self.type == "pagerduty" and not self.routing_key_env:
            raise ValueError("a pagerduty sink needs routing_key_env (the variable holding the routing key)")
        if self.type == "webhook" and not self.secret_env and not self.unsigned:
            raise ValueError("a webhook sink needs secret_env (the variable holding its HMAC key), or `unsigned: true` "
                             "to send notifications anybody could forge")
        if self.unsigned and (self.type != "webhook" or self.secret_env):
            raise ValueError("`unsigned: true` is for a webhook sink without secret_env")
        return self

    def secret(self) -> bytes | None:
        return _env(self.secret_env).encode() if self.secret_env else None

    def routing_key(self) -> str:
        return _env(self.routing_key_env) if self.routing_key_env else ""


def _env(name: str | None) -> str:
    value = os.environ.get(name or "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set (named by alerting.yaml)")
    return value


class Match(_Strict):
    severity: list[str] | None = None
    rule: list[str] | None = None
    service: list[str] | None = None

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: list[str] | None) -> list[str] | None:
        for s in v or []:
            if s not in ("critical", "high", "medium"):
                raise ValueError(f"unknown severity {s!r} (critical, high, medium)")
        return v

    @field_validator("rule")
    @classmethod
    def _rule(cls, v: list[str] | None) -> list[str] | None:
        for r in v or []:
            if r not in RULES:
                raise ValueError(f"unknown rule {r!r} (see privaudit rules)")
        return v

    def accepts(self, severity: str, rule: str, service: str) -> bool:
        return (
            (self.severity is None or severity in self.severity)
            and (self.rule is None or rule in self.rule)
            and (self.service is None or service in self.service)
        )


class Route(_Strict):
    match: Match = Match()
    sinks: list[str] = Field(min_length=1)


class AlertingConfig(_Strict):
    dashboard_url: str = "http://127.0.0.1:8750"
    group_window: Seconds = 3600.0
    group_wait: Seconds = 1.0
    retry_initial: Seconds = 1.0
    retry_max: Seconds = 60.0
    sinks: dict[str, SinkConfig] = Field(min_length=1)
    routes: list[Route] = Field(min_length=1)

    @field_validator("group_window", "group_wait", "retry_initial", "retry_max", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @field_validator("group_window")
    @classmethod
    def _window(cls, v: float) -> float:
        if v < 1:
            raise ValueError("must be at least 1s")
        return v

    @model_validator(mode="after")
    def _known_sinks(self) -> AlertingConfig:
        for i, route in enumerate(self.routes):
            for j, name in enumerate(route.sinks):
                if name not in self.sinks:
                    raise ValueError(f"routes[{i}].sinks[{j}]: unknown sink {name!r} "
                                     f"(declared: {', '.join(self.sinks)})")
        return self

    def sinks_for(self, severity: str, rule: str, service: str) -> list[str]:
        """Every matching route's sinks, each once, in the file's order."""
        out: list[str] = []
        for route in self.routes:
            if route.match.accepts(severity, rule, service):
                out += [s for s in route.sinks if s not in out]
        return out


def parse_alerting(data: object, source: str = "alerting.yaml") -> AlertingConfig:
    try:
        return AlertingConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        msg = err["msg"].removeprefix("Value error, ")
        where = format_loc(err["loc"])
        more = len(exc.errors()) - 1
        tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{source}: {where + ': ' if where else ''}{msg}{tail}") from exc


def load_alerting(path: str | Path) -> AlertingConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from exc
    return parse_alerting(data, str(path))
