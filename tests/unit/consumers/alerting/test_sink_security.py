"""Secrets in the alert path (issue 18, item 10): a signature check that answers False to anything
it cannot read, webhooks unsigned only when the routing file says so, receivers' URLs redacted."""

from __future__ import annotations

import logging
import time

import pytest

from privaudit.consumers.alerting import parse_alerting, sign, verify
from privaudit.consumers.alerting.sinks import Sink, SinkUnavailable, http_post
from privaudit.errors import ConfigError
from privaudit.settings import redacted_url

SECRET, BODY = b"a-shared-secret", b'{"rule": "PA-003"}'


@pytest.mark.parametrize("header", [
    "t=1700000000,v1=é", "t=١٧٠٠٠٠٠٠٠٠,v1=00",  # not ASCII (Arabic-Indic digits pass int())
    b"\xff\xfe\x00", "t=\x00", "", ",,,", "t=", "t=abc,v1=00", "v1=00", "t=1,t=2,v1=",
    "t=99999999999999999999999999,v1=00", "t=-1,v1=00", "t=1e3,v1=00", "x" * 100_000,
    None, 17, ["t=1"],
])
def test_verify_is_false_for_any_header_it_cannot_read(header: object) -> None:
    assert verify(SECRET, BODY, header) is False  # type: ignore[arg-type]


def test_verify_takes_its_own_recent_signature_and_nothing_near_it() -> None:
    now = int(time.time())
    good = sign(SECRET, BODY, now)
    assert verify(SECRET, BODY, good) and verify(SECRET, BODY, good.encode("ascii"))
    assert not verify(SECRET, BODY + b" ", good)
    assert not verify(b"another secret", BODY, good)
    assert not verify(SECRET, BODY, sign(SECRET, BODY, now - 3600))  # replayed an hour later
    assert not verify(SECRET, BODY, good.upper())


def _config(sink: dict[str, object]) -> dict[str, object]:
    return {"sinks": {"hook": sink}, "routes": [{"sinks": ["hook"]}]}


def test_a_webhook_without_a_secret_is_refused_unless_the_file_says_unsigned(caplog, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"sinks\.hook.*secret_env.*unsigned: true"):
        parse_alerting(_config({"type": "webhook", "url": "http://hook.test/in"}))
    with pytest.raises(ConfigError, match="unsigned: true` is for a webhook sink without secret_env"):
        parse_alerting(_config({"type": "webhook", "url": "http://h.test", "secret_env": "S", "unsigned": True}))
    with pytest.raises(ConfigError, match="unsigned"):
        parse_alerting(_config({"type": "slack", "url": "http://h.test", "unsigned": True}))
    with pytest.raises(ConfigError, match="unsigned"):
        parse_alerting(_config({"type": "webhook", "url": "http://h.test", "unsigned": "yes"}))  # strict: a bool
    config = parse_alerting(_config({"type": "webhook", "url": "http://hook.test/in", "unsigned": True}))
    assert config.sinks["hook"].unsigned

    from privaudit.consumers.alerting import service

    class _Refused(Exception):
        pass

    def no_broker(*args: object, **kwargs: object) -> None:
        raise _Refused

    caplog.set_level(logging.WARNING, logger="privaudit.alerts")
    monkeypatch.setattr(service, "make_consumer", no_broker)
    with pytest.raises(_Refused):
        service.make_dispatcher(config, "unused:9092", store=None)  # type: ignore[arg-type]
    assert "webhook sink hook sends unsigned notifications" in caplog.text


@pytest.mark.parametrize("url", [
    "http://user:hunter2@127.0.0.1:1/privaudit",
    "https://hooks.slack.com.invalid/services/T000/B000/XXXXSECRETXXXX",
    "http://127.0.0.1:1/hook?token=SECRETQUERY&x=1",
    "http://[::1]:1/in/SECRETPATH",
    "http://:pw-only@127.0.0.1:1/",
])
def test_a_receivers_credentials_and_token_never_reach_the_log_or_the_history(url: str) -> None:
    with pytest.raises(SinkUnavailable) as failed:
        http_post(url, b"{}", {}, 2.0)
    message = str(failed.value)
    for secret in ("hunter2", "user", "XXXXSECRETXXXX", "SECRETQUERY", "SECRETPATH", "pw-only", "T000"):
        assert secret not in message, message
    assert message.startswith(redacted_url(url))
    # ... and what the dispatcher records as the group's last error is that message
    config = parse_alerting(_config({"type": "webhook", "url": url, "unsigned": True}))
    sink = Sink("hook", config.sinks["hook"], "http://dash.test", post=lambda *a: http_post(url, b"{}", {}, 2.0))
    status, error = sink._post(url, {}, {})
    assert status == "retrying" and error == message


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:pw@hooks.example:8443/a/b?c=d", "https://hooks.example:8443/..."),
    ("http://127.0.0.1:9093", "http://127.0.0.1:9093"),
    ("http://[::1]:80/x", "http://[::1]:80/..."),
    ("http://bad:port:x/", "(an unreadable URL)"),
])
def test_redacted_urls_keep_scheme_host_and_port_only(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
