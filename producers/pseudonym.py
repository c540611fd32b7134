"""Pseudonymise raw identifiers before they leave the service: a keyed HMAC-SHA-256.

    pseudonymize = Pseudonymizer.from_env()          # key from PRIVAUDIT_PSEUDONYM_KEY
    subject_id = pseudonymize("010-1234-5678")        # 'p-3b1f...' (32 hex digits)

The same key gives the same pseudonym, so events about one person can be joined; without the key
the pseudonym cannot be reversed or recomputed from a guessed identifier. Keep the key in the
service's secret store; rotating it breaks the link between old and new pseudonyms.

One person is one subject whatever form a service sends their identifier in: before hashing, a
Korean mobile number is put in E.164 (``010-1234-5678``, ``01012345678`` and ``+82 10 1234 5678``
are all ``+821012345678``), an e-mail address is lower-cased, and all text is NFKC-folded and
stripped (:func:`privaudit.schemas.identifiers.canonical`). An identifier with nothing left of it
(empty, or only whitespace) is refused: it would make everyone without one the same subject. So is
a key that is short or barely varies (16 spaces).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from privaudit.errors import ConfigError, IdentifierError
from privaudit.schemas.identifiers import canonical
from privaudit.settings import ENV_PSEUDONYM_KEY

MIN_KEY_BYTES = 16
#: A key must use at least this many different byte values: "aaaa..." or 16 spaces is no secret.
MIN_DISTINCT_KEY_BYTES = 8


def check_key(key: bytes) -> bytes:
    """``key`` if it is fit to key the pseudonyms, else :class:`ConfigError` saying why."""
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"pseudonymisation key too short: {len(key)} bytes, need at least {MIN_KEY_BYTES}")
    if len(set(key)) < MIN_DISTINCT_KEY_BYTES or not key.strip():
        raise ConfigError(f"pseudonymisation key too weak: it uses {len(set(key))} different byte value(s), need at "
                          f"least {MIN_DISTINCT_KEY_BYTES} (use a random secret, e.g. `openssl rand -hex 32`)")
    return key


class Pseudonymizer:
    def __init__(self, key: bytes, prefix: str = "p-") -> None:
        self._key = check_key(key)
        self.prefix = prefix

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Pseudonymizer:
        value = (env if env is not None else os.environ).get(ENV_PSEUDONYM_KEY)
        if not value:
            raise ConfigError(f"set {ENV_PSEUDONYM_KEY} to a secret of at least {MIN_KEY_BYTES} bytes")
        return cls(value.encode("utf-8"))

    def __call__(self, raw: str) -> str:
        """The pseudonym of ``raw``, in its canonical form (see the module's doc)."""
        text = canonical(raw)
        if not text:
            raise IdentifierError("an empty identifier has no pseudonym: it would make everyone without one "
                                  "the same subject")
        digest = hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{self.prefix}{digest[:32]}"
