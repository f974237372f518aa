"""Defensive accessors for raw FHIR JSON. Resources are read before (or without) model validation, so
every field may hold the wrong type: these return ``None`` or empty instead of raising."""

from __future__ import annotations

import re
from typing import Any

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PATIENT_REFERENCE = re.compile(rf"(?:^|/)Patient/({_FHIR_ID.pattern})(?:/_history/[^/]+)?$")


def string(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else ``None`` (safe as a dict/set key)."""
    return value if isinstance(value, str) and value else None


def objects(value: Any) -> list[dict[str, Any]]:
    """The dict items of a JSON array (anything else in it, or a non-array, is dropped)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def codings(concept: Any) -> list[dict[str, Any]]:
    """The Coding objects of a CodeableConcept."""
    return objects(obj(concept).get("coding"))


def codes(concept: Any) -> set[str]:
    """The string codes of a CodeableConcept's codings."""
    return {code for c in codings(concept) if (code := string(c.get("code")))}


def number(value: Any) -> float | None:
    """A JSON number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources in a Bundle's entries, without OperationOutcome entries (search.mode outcome)."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    return [
        resource
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(resource := entry.get("resource"), dict)
        and resource.get("resourceType") != "OperationOutcome"
    ]


def patient_reference_id(reference: Any) -> str | None:
    """The id in a ``Patient/<id>`` reference (relative or absolute, with or without ``/_history/n``),
    else ``None``. Most references are exactly ``Patient/<id>``: those skip the search."""
    if not isinstance(reference, str):
        return None
    if reference.startswith("Patient/") and _FHIR_ID.fullmatch(reference, 8):
        return reference[8:]
    match = _PATIENT_REFERENCE.search(reference)
    return match.group(1) if match else None
