"""What the Patient resource itself says that decides whether a population screen includes the patient."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cds_hooks.fhir.dates import parse_fhir_datetime


def is_deceased(patient: Mapping[str, Any], now: datetime) -> bool:
    """``deceasedBoolean`` true, or a ``deceasedDateTime`` not after ``now`` (an unreadable one counts)."""
    if patient.get("deceasedBoolean") is True:
        return True
    if "deceasedDateTime" not in patient:
        return False
    died = parse_fhir_datetime(patient["deceasedDateTime"])
    return died is None or died <= now
