"""Issue 25 point 1 after clinical v3: every resource type the clinical core reads has a prefetch template.

The switch asks who doses it (issue 22 A3): an insulin pump on the record means the pump team, not a dose on
the card. The pump is a ``Device``; without the ``devices`` template no EHR would send it (prefetch only) and
the service would never fetch it (``fhirServer``): the card would propose a dose to a pump user."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir import builders as fhir
from cds_hooks.hooks.registry import prefetch_templates
from tests.builders import SERVICE_URL, bundle, empty_prefetch, patient, porcine_statement, request, topics

CLINICAL = Path(__file__).resolve().parents[2] / "cds_hooks" / "clinical"
SNOMED = "http://snomed.info/sct"


def types_read_by_the_clinical_core() -> set[str]:
    """Every ``index.of_type("<Type>")`` in cds_hooks/clinical: the resource types the rules look at."""
    found = set()
    for path in CLINICAL.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "of_type"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


def types_the_templates_bring() -> set[str]:
    brought = set()
    for template in prefetch_templates(default_knowledge()).values():
        path, _, query = template.partition("?")
        brought.add(path.split("/")[0])
        for param in query.split("&"):
            if param.startswith("_include=") and param.endswith(":medication"):
                brought.add("Medication")
    return brought


def test_p1_every_resource_type_the_rules_read_has_a_template():
    read = types_read_by_the_clinical_core()
    assert {"Device", "Patient", "Observation", "Condition", "ServiceRequest"} <= read  # the scan sees them
    assert read - types_the_templates_bring() == set()


def pump(pid: str, rid: str) -> dict[str, Any]:
    return {
        "resourceType": "Device",
        "id": rid,
        "status": "active",
        "type": fhir.concept(fhir.coding(SNOMED, "69805005", "Insulin pump"), text="Insulin pump"),
        "deviceName": [{"name": "Omnipod 5", "type": "user-friendly-name"}],
        "patient": {"reference": f"Patient/{pid}"},
    }


def suggestion_labels(body: dict[str, Any]) -> list[str]:
    return [s["label"] for card in body["cards"] for s in card.get("suggestions") or []]


def test_p1_a_prefetched_pump_sends_the_switch_to_the_pump_team(client):
    prefetch = empty_prefetch("dev-1")
    prefetch["patient"] = patient("dev-1")
    prefetch["medicationStatements"] = bundle(porcine_statement("dev-1", "dev-1-ms"))
    without = client.post(SERVICE_URL, json=request("dev-1", prefetch))
    assert without.status_code == 200 and topics(without.get_json()) == ["animal-insulin-switch"]
    assert not any("pump team" in label for label in suggestion_labels(without.get_json()))

    prefetch["devices"] = bundle(pump("dev-1", "dev-1-pump"))
    r = client.post(SERVICE_URL, json=request("dev-1", prefetch))
    assert r.status_code == 200 and topics(r.get_json()) == ["animal-insulin-switch"]
    assert any("pump team" in label for label in suggestion_labels(r.get_json())), r.get_json()


@pytest.mark.fhir_server
def test_f1_the_service_fetches_the_pump_from_the_fhir_server(client, open_fhir_server):
    pid = "dev-2"
    for resource in (patient(pid), porcine_statement(pid, "dev-2-ms"), pump(pid, "dev-2-pump")):
        open_fhir_server.put(resource)
    r = client.post(SERVICE_URL, json=request(pid, None, fhirServer=open_fhir_server.base_url))
    assert r.status_code == 200 and topics(r.get_json()) == ["animal-insulin-switch"]
    assert any("pump team" in label for label in suggestion_labels(r.get_json())), r.get_json()
