"""Logging set-up: one line per request, text or JSON, never tokens, JWTs or patient data."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request fields passed in ``extra``."""

    FIELDS = ("service", "hook_instance", "status", "duration_ms", "method", "path", "cards", "fetched")

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                data[name] = getattr(record, name)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


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
