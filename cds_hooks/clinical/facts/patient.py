"""The patient's birth date and active devices: what the insulin switch needs to know who the patient is.

A child, a pump user or a CGM user is told apart from the record (issue 22 A1, A3, A4): the Patient
resource's ``birthDate``, and active ``Device`` resources whose type or name is an insulin pump or a
continuous glucose monitor (knowledge/valuesets/insulin-pump.json, cgm-device.json).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from cds_hooks.clinical.facts.model import DeviceFact, Evidence, PatientFact
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.json_access import obj, objects, string
from cds_hooks.fhir.resource_index import ResourceIndex

DEVICE_KINDS = ("insulin-pump", "cgm-device")
INACTIVE_DEVICE = frozenset({"inactive", "entered-in-error"})


def patient_fact(index: ResourceIndex, patient_id: str) -> PatientFact | None:
    """The birth date of ``Patient/<patient_id>`` (a partial date counts from its first day)."""
    for patient in index.of_type("Patient"):
        if patient.get("id") != patient_id:
            continue
        born = _birth_date(patient.get("birthDate"))
        if born is not None:
            return PatientFact(born, Evidence(f"Patient/{patient_id}", f"Born {born.isoformat()}"))
    return None


def _birth_date(value: Any) -> date | None:
    text = string(value)
    if text is None:
        return None
    parts = text.split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 1
        day = int(parts[2][:2]) if len(parts) > 2 else 1
        return date(year, month, day)
    except (ValueError, IndexError):
        return None


def device_kind(device: dict[str, Any], knowledge: Knowledge) -> tuple[str, str] | None:
    """``(kind, name)`` of an active insulin pump or continuous glucose monitor, else None (the bulk
    screen's prefilter asks the same question before grouping)."""
    if device.get("status") in INACTIVE_DEVICE:
        return None
    concepts = [obj(device.get("type"))]
    names = [string(n.get("name")) for n in objects(device.get("deviceName"))]
    concepts += [{"text": n} for n in names if n]
    for kind in DEVICE_KINDS:
        valueset = knowledge.valuesets.get(kind)
        if valueset is not None and any(valueset.matches_concept(c) for c in concepts if c):
            return kind, next((n for n in names if n), None) or _display(concepts[0]) or kind.replace(
                "-", " "
            )
    return None


def collect_devices(index: ResourceIndex, knowledge: Knowledge) -> list[DeviceFact]:
    """Active insulin pumps and continuous glucose monitors on the record."""
    found: list[DeviceFact] = []
    for device in index.of_type("Device"):
        known = None if index.rejection(device) else device_kind(device, knowledge)
        if known is None:
            continue
        kind, name = known
        rid = device.get("id")
        reference = f"Device/{rid}" if isinstance(rid, str) else ""
        found.append(DeviceFact(kind, name, Evidence(reference, _device_text(name, kind))))
    return found


def _device_text(name: str, kind: str) -> str:
    """The evidence line of a device, its kind said once ("Insulin pump, device (active Device)", not
    "Insulin pump, device (Device, insulin pump)")."""
    label = kind.replace("-", " ")
    return f"{name} (active Device)" if label in name.lower() else f"{name} (active Device: {label})"


def _display(concept: dict[str, Any]) -> str | None:
    if isinstance(concept.get("text"), str) and concept["text"]:
        return concept["text"]
    for coding in objects(concept.get("coding")):
        if isinstance(coding.get("display"), str):
            return coding["display"]
    return None
