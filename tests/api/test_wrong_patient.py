"""Point 2 of issue 25: a prefetched resource about another patient than ``context.patientId`` is refused
(400 naming the key and the resource), never turned into a card for the patient in context (P6: prefetched
data must be what the service would read itself for this patient)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import SERVICE_URL, bundle, empty_prefetch, request, topics

EX01 = Path(__file__).resolve().parents[2] / "examples" / "01-porcine-insulin-stable.json"


def ex01_prefetch() -> dict:
    resources = [e["resource"] for e in json.loads(EX01.read_text())["entry"]]
    prefetch = empty_prefetch("ex01")
    prefetch["patient"] = next(r for r in resources if r["resourceType"] == "Patient")
    prefetch["medicationStatements"] = bundle(
        *[r for r in resources if r["resourceType"] == "MedicationStatement"]
    )
    return prefetch


def test_p6_ex01_prefetch_for_its_own_patient_gives_its_card(client):
    r = client.post(SERVICE_URL, json=request("ex01", ex01_prefetch()))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert topics(r.get_json()) == ["animal-insulin-switch"]


def test_p6_ex01_prefetch_with_another_patient_id_is_400_naming_key_and_resource(client):
    r = client.post(SERVICE_URL, json=request("someone-else", ex01_prefetch()))
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.mimetype == "application/fhir+json"
    body = r.get_json()
    issue = body["issue"][0]
    assert body["resourceType"] == "OperationOutcome" and issue["code"] == "invalid"
    # The Patient read is checked first: the first key of the templates naming another patient.
    assert "prefetch['patient'] holds Patient/ex01" in issue["diagnostics"]
    assert issue["expression"] == ["prefetch.patient"]
    assert "someone-else" not in r.get_data(as_text=True)  # no card, no draft order for Patient/someone-else


@pytest.mark.parametrize(
    "reference", ["Patient/ex01", "https://ehr.example.org/fhir/Patient/ex01", "Patient/ex01/_history/2"]
)
def test_p6_a_search_bundle_entry_of_another_patient_is_400(client, reference):
    prefetch = ex01_prefetch()
    prefetch["patient"] = {"resourceType": "Patient", "id": "p2"}
    statement = prefetch["medicationStatements"]["entry"][0]["resource"]
    statement["subject"] = {"reference": reference}
    r = client.post(SERVICE_URL, json=request("p2", prefetch))
    assert r.status_code == 400
    issue = r.get_json()["issue"][0]
    assert (
        f"prefetch['medicationStatements'] holds MedicationStatement/{statement['id']}"
        in issue["diagnostics"]
    )
    assert issue["expression"] == ["prefetch.medicationStatements"]


def test_p6_resources_naming_no_patient_and_the_patient_in_context_are_accepted(client):
    prefetch = ex01_prefetch()
    medication = {"resourceType": "Medication", "id": "m1", "code": {"text": "Humulin S"}}
    prefetch["medicationRequests"] = bundle(medication)  # as `_include` brings it: no patient
    statement = prefetch["medicationStatements"]["entry"][0]["resource"]
    statement["subject"] = {"reference": "http://127.0.0.1/fhir/Patient/ex01"}
    r = client.post(SERVICE_URL, json=request("ex01", prefetch))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert topics(r.get_json()) == ["animal-insulin-switch"]


_REFS = st.one_of(
    st.sampled_from(["Patient/p1", "Patient/p2", "https://ehr/fhir/Patient/p1", "Patient/p1/_history/2"]),
    st.sampled_from(["Patient/a/Patient/p1", "Patient/p 1", "Patient/" + "x" * 65, "Group/p1", ""]),
    st.just("Patient/"),
    st.builds(lambda a, b: f"{a}Patient/{b}", st.sampled_from(["", "x/", "Patient/"]), st.text(max_size=12)),
    st.text(max_size=12),
)


@given(reference=_REFS)
def test_p6_a_patient_reference_is_read_the_same_with_or_without_the_pattern(reference):
    """``patient_reference_id`` reads ``Patient/<id>`` without the regular expression: it must find exactly
    the id the pattern finds (the wrong-patient check refuses on it)."""
    from cds_hooks.fhir.json_access import _PATIENT_REFERENCE, patient_reference_id

    match = _PATIENT_REFERENCE.search(reference)
    assert patient_reference_id(reference) == (match.group(1) if match else None)
