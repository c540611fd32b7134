"""Pseudonymise raw identifiers before they leave the service: a keyed HMAC-SHA-256.

    pseudonymize = Pseudonymizer.from_env()          # key from PRIVAUDIT_PSEUDONYM_KEY
    subject_id = pseudonymize("010-1234-5678")        # 'p-3b1f...' (32 hex digits)

The same key gives the same pseudonym, so events about one person can be joined; without the key
the pseudonym cannot be reversed or recomputed from a guessed identifier. Keep the key in the
service's secret store; rotating it breaks the link between old and new pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata

from privaudit.errors import ConfigError
from privaudit.settings import ENV_PSEUDONYM_KEY

MIN_KEY_BYTES = 16


class Pseudonymizer:
    def __init__(self, key: bytes, prefix: str = "p-") -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"pseudonymisation key too short: {len(key)} bytes, need at least {MIN_KEY_BYTES}")
        self._key = key
        self.prefix = prefix

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Pseudonymizer:
        value = (env if env is not None else os.environ).get(ENV_PSEUDONYM_KEY)
        if not value:
            raise ConfigError(f"set {ENV_PSEUDONYM_KEY} to a secret of at least {MIN_KEY_BYTES} bytes")
        return cls(value.encode("utf-8"))

    def __call__(self, raw: str) -> str:
        """The pseudonym of ``raw`` (NFC-normalised and stripped, so trivial variants agree)."""
        text = unicodedata.normalize("NFC", raw).strip()
        digest = hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{self.prefix}{digest[:32]}"
