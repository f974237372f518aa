"""Small builders for CDS Hooks requests and FHIR R4 resources used across the HTTP tests."""

from __future__ import annotations

import uuid
from typing import Any

SERVICE = "immune-insulin-resistance"
SERVICE_URL = f"/cds-services/{SERVICE}"
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def bundle(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        b["link"] = [{"relation": "next", "url": next_url}]
    return b


def transaction(*resources: dict[str, Any]) -> dict[str, Any]:
    """A transaction of ``PUT Type/id`` entries, so the ids stay ours on the FHIR server."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1960-04-02"}


def porcine_statement(pid: str, rid: str = "ms-pork", status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": rid,
        "status": status,
        "medicationCodeableConcept": {
            "coding": [{"system": ATC, "code": "A10AB03", "display": "insulin (pork)"}],
            "text": "Hypurin Porcine Neutral",
        },
        "subject": {"reference": f"Patient/{pid}"},
    }


def glucose(pid: str, rid: str, value: float, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "2345-7", "display": "Glucose"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    }


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
