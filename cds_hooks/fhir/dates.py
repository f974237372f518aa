"""FHIR R4 date/dateTime/instant parsing: partial dates, missing zones, and garbage, without raising."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_fhir_datetime(value: object) -> datetime | None:
    """An aware UTC datetime, or ``None`` for anything unusable. A date without a time is taken as
    midnight UTC; a dateTime without a zone as UTC (FHIR requires a zone when a time is given)."""
    if not isinstance(value, str) or not value:
        return None
    partial = _PARTIAL.match(value)
    try:
        if partial:
            year, month, day = partial.groups()
            return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_date(value: datetime) -> str:
    return value.date().isoformat()
