"""Small builders for CDS Hooks requests and FHIR R4 resources used across the HTTP tests."""

from __future__ import annotations

import uuid
from typing import Any

from cds_hooks.fhir import builders as fhir
from cds_hooks.fhir.builders import ATC, LOINC, UCUM

SERVICE = "immune-insulin-resistance"
SERVICE_URL = f"/cds-services/{SERVICE}"
__all__ = ["ATC", "LOINC", "UCUM"]  # re-exported: the tests name the code systems from here


def bundle(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    """A searchset of ``resources``, as a prefetch value or a FHIR server's page."""
    return fhir.searchset(resources, next_url=next_url)


def transaction(*resources: dict[str, Any]) -> dict[str, Any]:
    """A transaction of ``PUT Type/id`` entries, so the ids stay ours on the FHIR server."""
    return fhir.transaction(resources)


def patient(pid: str) -> dict[str, Any]:
    return fhir.patient(pid, birth_date="1960-04-02")


def porcine_statement(pid: str, rid: str = "ms-pork", status: str = "active") -> dict[str, Any]:
    pork = fhir.concept(fhir.coding(ATC, "A10AB03", "insulin (pork)"), text="Hypurin Porcine Neutral")
    return fhir.medication_statement(pid, rid, drug=pork, status=status)


def glucose(pid: str, rid: str, value: float, when: str) -> dict[str, Any]:
    return fhir.observation(pid, rid, code="2345-7", display="Glucose", when=when, value=value, unit="mg/dL")


def empty_prefetch(pid: str) -> dict[str, Any]:
    """Every prefetch key present with no data (so nothing is fetched)."""
    return {
        "patient": patient(pid),
        "observations": bundle(),
        "labResults": bundle(),
        "medicationStatements": bundle(),
        "medicationRequests": bundle(),
        "conditions": bundle(),
        "serviceRequests": bundle(),
    }


def request(pid: str = "p1", prefetch: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": pid},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    body.update(extra)
    return body


def porcine_request(pid: str = "p1") -> dict[str, Any]:
    prefetch = empty_prefetch(pid)
    prefetch["medicationStatements"] = bundle(porcine_statement(pid))
    return request(pid, prefetch)


def topics(response_json: dict[str, Any]) -> list[str]:
    return sorted(card["source"]["topic"]["code"] for card in response_json["cards"])
