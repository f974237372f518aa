"""Logging set-up: one line per request, text or JSON, never tokens, JWTs or patient data.

JSON lines come from python-json-logger: ``time``, ``level``, ``logger``, ``message`` and the request fields
passed in ``extra`` (service, hook_instance, status, duration_ms, …).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object per line; ISO-8601 UTC times; the ``extra`` fields of a record as keys."""

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_default=str,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Configure the ``cds_hooks`` logger tree once (idempotent: the app factory may run many times)."""
    logger = logging.getLogger("cds_hooks")
    logger.setLevel(level.upper())
    if any(getattr(h, "_cds_hooks", False) for h in logger.handlers):
        for handler in logger.handlers:
            if getattr(handler, "_cds_hooks", False):
                handler.setFormatter(_formatter(fmt))
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._cds_hooks = True  # type: ignore[attr-defined]
    handler.setFormatter(_formatter(fmt))
    logger.addHandler(handler)


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
