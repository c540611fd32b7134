"""The Ed25519 key that signs each new chain head, and the statement it signs.

The private key comes from ``PRIVAUDIT_LEDGER_KEY`` (a PEM text, or the 32-byte seed in hex; the CLI
reads it and passes it here) or from a key file (PEM, PKCS#8, unencrypted, mode 0600); the CLI
makes one in the data directory on first use, with the public key beside it (``ledger.pub``). The public key is what an
auditor needs (``privaudit verify --public-key``): anyone holding the private key can sign a chain
of their own making, so keep it away from whoever administers the store.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from privaudit.errors import ConfigError
from privaudit.settings import ENV_LEDGER_KEY

STATEMENT_VERSION = "privaudit-ledger/1"


def statement(topic: str, partition: int, incarnation: int, first: int, last: int, prev: bytes, head: bytes,
              counts: tuple[int, ...], low: datetime, high: datetime) -> bytes:
    """What a signature covers: one loaded range of one partition, the heads before and after it,
    how many records of each kind it holds (events, dead letters, repeats, rewrites, absent) and
    the span of its events' times (so that no one can date a range past the retention period, where
    ``verify`` reads no rows, without breaking its signature)."""
    return " ".join([STATEMENT_VERSION, topic, str(partition), str(incarnation), str(first), str(last), prev.hex(),
                     head.hex(), *map(str, counts), str(_ms(low)), str(_ms(high))]).encode()


def _ms(at: datetime) -> int:
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return (at - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey
    origin: str  # where the key came from, for messages

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    @property
    def pem(self) -> bytes:
        """The private key as PEM (to hand to a consumer process)."""
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    @classmethod
    def from_pem(cls, pem: bytes, origin: str) -> Signer:
        return cls(_private_from_text(pem.decode(), origin), origin)


class Verifier:
    """Checks signatures with one trusted public key."""

    def __init__(self, public: Ed25519PublicKey, origin: str) -> None:
        self.public = public
        self.origin = origin
        self.key_id = key_id(public)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def load(cls, text_or_path: str) -> Verifier:
        """A public key from a PEM file, PEM text or 64 hex characters (the raw key)."""
        path = Path(text_or_path)
        text = path.read_text() if "BEGIN" not in text_or_path and path.is_file() else text_or_path
        try:
            if "BEGIN" in text:
                key = serialization.load_pem_public_key(text.encode())
            else:
                key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.strip()))
        except ValueError as exc:
            raise ConfigError(f"not an Ed25519 public key (PEM or 64 hex characters): {text_or_path[:80]}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"not an Ed25519 public key: {text_or_path[:80]}")
        return cls(key, str(text_or_path) if path.is_file() else "the given key")


def _private_from_text(text: str, origin: str) -> Ed25519PrivateKey:
    try:
        if "BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text.strip()))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{origin}: not an unencrypted Ed25519 private key (PEM or a 64-hex-character seed)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{origin}: not an Ed25519 private key")
    return key


def load_signer(key: str | None, path: Path | None, *, create: bool = False) -> Signer:
    """The signing key: ``key`` (``PRIVAUDIT_LEDGER_KEY``'s text) if given, else the key file ``path``
    (created, with its public key beside it, when ``create`` and it does not exist)."""
    if key:
        return Signer(_private_from_text(key, ENV_LEDGER_KEY), ENV_LEDGER_KEY)
    if path is None:
        raise ConfigError(f"no ledger signing key: set {ENV_LEDGER_KEY} or give a key file (--ledger-key)")
    if not path.exists():
        if not create:
            raise ConfigError(f"no ledger signing key at {path}")
        made = Ed25519PrivateKey.generate()
        pem = made.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        path.with_suffix(".pub").write_text(public_pem(made.public_key()))
        return Signer(made, str(path))
    return Signer(_private_from_text(path.read_text(), str(path)), str(path))
