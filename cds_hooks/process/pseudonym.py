"""Keyed patient pseudonyms: the service must recognise a patient again (snooze, no repeat at signing,
audit) without ever storing the patient id.

A pseudonym is HMAC-SHA256 under a secret key over the patient id *within its FHIR server* (the same id
on two EHRs is two patients). The key comes from ``CDS_HOOKS_PSEUDONYM_KEY``; when that is unset, a
random key is generated into the data directory on first start (``pseudonym.key``, mode 0600) and read
from there afterwards. Instances that share a database must share the key (set the variable to the same
value on each): otherwise each recognises only the patients it has seen itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_FILE = "pseudonym.key"
MIN_KEY_CHARS = 32


class PseudonymKeyError(ValueError):
    """The configured or stored key cannot be used."""


@dataclass(frozen=True)
class Pseudonymizer:
    """Patient id → stable, keyed, one-way pseudonym (64 hex characters)."""

    key: bytes = b""

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_CHARS:
            raise PseudonymKeyError(f"the pseudonym key must have at least {MIN_KEY_CHARS} characters")

    def patient(self, patient_id: str, fhir_server: str | None = None) -> str:
        namespace = (fhir_server or "").strip().rstrip("/")
        message = f"{namespace}\x00Patient/{patient_id}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def key_check(self) -> str:
        """A value that tells whether two instances use the same key, and nothing about the key."""
        return hmac.new(self.key, b"cds-hooks pseudonym key check", hashlib.sha256).hexdigest()[:16]


def load_key(configured: str, data_dir: Path) -> bytes:
    """The configured key, else the one in the data directory, created there (atomically) if absent."""
    if configured:
        key = configured.strip().encode()
        if len(key) < MIN_KEY_CHARS:
            raise PseudonymKeyError(
                f"CDS_HOOKS_PSEUDONYM_KEY must have at least {MIN_KEY_CHARS} characters "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return key
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY_CHARS:
        raise PseudonymKeyError(f"{path} holds no usable key; delete it to generate a new one")
    return key


def _create_key_file(path: Path) -> None:
    """Write a new random key to a private temporary file and link it into place: several workers may
    start at once, and ``link`` fails if another one won, so every process ends up with the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
