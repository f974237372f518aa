"""What the commands that read the service's own database share: the ``--since`` option and opening the
database the service uses (``CDS_HOOKS_DATABASE_URL`` or the SQLite file in the data directory)."""

from __future__ import annotations

from datetime import datetime

from cds_hooks.fhir.dates import parse_fhir_datetime
from cds_hooks.process.config import ConfigError, Settings
from cds_hooks.store.database import Store


class UsageError(Exception):
    """A wrong option or configuration: the command prints it and exits 2."""


def since_option(text: str | None) -> datetime | None:
    """``--since``: a date or date-time, or nothing."""
    if not text:
        return None
    since = parse_fhir_datetime(text)
    if since is None:
        raise UsageError(f"--since must be a date or date-time like 2026-11-01, got {text!r}")
    return since


def service_store() -> Store:
    """The database the service writes, from the same settings."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise UsageError(f"configuration error: {exc}") from exc
    return Store(settings.resolved_database_url)
