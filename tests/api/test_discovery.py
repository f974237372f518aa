"""Discovery (checklist D1–D3, P1–P3)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from cds_hooks.clinical.knowledge import default_knowledge
from tests.builders import SERVICE

ALLOWED_TOKENS = {
    "context.patientId",
    "context.userId",
    "context.encounterId",
    "userPractitionerId",
    "userPractitionerRoleId",
    "userPatientId",
    "userRelatedPersonId",
}


def test_d1_discovery_lists_the_patient_view_service(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    entry = next(s for s in services if s["id"] == SERVICE)
    # D2: hook, description, id required; title, usageRequirements, prefetch present.
    assert entry["hook"] == "patient-view"
    assert entry["title"] and entry["description"] and entry["usageRequirements"]
    assert set(entry["prefetch"]) == {
        "patient",
        "observations",
        "labResults",
        "medicationStatements",
        "medicationRequests",
        "conditions",
        "serviceRequests",
        "devices",
    }


def test_p2_p3_templates_use_only_allowed_tokens_and_query_forms(client):
    templates = client.get("/cds-services").get_json()["services"][0]["prefetch"]
    for key, template in templates.items():
        for token in re.findall(r"\{\{\s*(.*?)\s*\}\}", template):
            assert token in ALLOWED_TOKENS, (key, token)
        if "?" not in template:
            assert re.fullmatch(r"[A-Z][A-Za-z]+/\{\{context\.patientId\}\}", template), key
            continue
        rtype, query = template.split("?", 1)
        assert re.fullmatch(r"[A-Z][A-Za-z]+", rtype)
        for name, value in parse_qsl(query, keep_blank_values=True):
            # P3: resource references, token equality, _sort, _count; no chained params. Beyond P3 only the
            # _include of the medication a statement or request references (issue 25: prefetch-only EHRs).
            assert name in {"patient", "code", "category", "_sort", "_count", "_include"}, (key, name)
            if name == "_include":
                assert value == f"{rtype}:medication", (key, value)


def test_templates_are_generated_from_the_knowledge_value_sets(client):
    templates = client.get("/cds-services").get_json()["services"][0]["prefetch"]
    knowledge = default_knowledge()
    for lab in knowledge.labs.values():
        for code in lab.valueset.codes("http://loinc.org"):
            assert f"http://loinc.org|{code}" in templates["observations"], (lab.name, code)
    # Conditions are not filtered by clinical status (recurrence and relapse count).
    assert "clinical-status" not in templates["conditions"]
    # Local-coded antibody results are reached through the laboratory category.
    assert "category=laboratory" in templates["labResults"]


def test_p1_medication_templates_include_the_referenced_medication(client):
    """Issue 25 point 1: an EHR that fills the templates and sends no fhirServer sends the Medications its
    MedicationStatements and MedicationRequests reference, so a bovine insulin ordered by reference (ex02)
    can be judged."""
    for service in client.get("/cds-services").get_json()["services"]:
        templates = service["prefetch"]
        assert "_include=MedicationRequest:medication" in templates["medicationRequests"]
        assert "_include=MedicationStatement:medication" in templates["medicationStatements"]
