"""The real FHIR test server (sekmet-fhir) does what the service relies on.

Each test asserts the resources that come back, never only a 200: the server ignores search
parameters it does not know, so a wrong query would still answer 200 with the wrong resources.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_hooks.testing.fhir_test_server import FhirServerError, LocalFhirServer

LOINC = "http://loinc.org"
LOCAL = "urn:oid:1.2.3.4.99"  # a hospital's local code system
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PATIENT = "lfs-p1"
OTHER_PATIENT = "lfs-p2"
POSTED_OBS = "urn:uuid:6f1d7c2e-0d1b-4a8e-9a57-2f8f5c1d0a11"


def _obs(
    oid: str,
    patient: str,
    system: str,
    code: str,
    when: str,
    category: str = "laboratory",
    status: str = "final",
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": 7.0, "unit": "mmol/L"},
    }


# id -> resource; every id is unique to this module because the server is shared by the session.
OBSERVATIONS = [
    _obs("lfs-glu-1", PATIENT, LOINC, "2345-7", "2024-01-10T08:00:00Z"),
    _obs("lfs-glu-2", PATIENT, LOINC, "2345-7", "2024-03-05T08:00:00Z"),
    _obs("lfs-glu-3", PATIENT, LOINC, "2345-7", "2024-02-01T08:00:00Z", status="cancelled"),
    _obs("lfs-a1c-1", PATIENT, LOINC, "4548-4", "2024-02-20T08:00:00Z"),
    _obs("lfs-local-glu", PATIENT, LOCAL, "2345-7", "2024-01-15T08:00:00Z"),  # same code, other system
    _obs("lfs-creat", PATIENT, LOINC, "2160-0", "2023-12-01T08:00:00Z"),
    _obs("lfs-hr", PATIENT, LOINC, "8867-4", "2024-02-25T08:00:00Z", category="vital-signs"),
    _obs("lfs-other-glu", OTHER_PATIENT, LOINC, "2345-7", "2024-03-01T08:00:00Z"),
]
PATIENT_OBS = {o["id"] for o in OBSERVATIONS if o["subject"]["reference"] == f"Patient/{PATIENT}"}


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def _bundle() -> dict[str, Any]:
    entries = [
        _put({"resourceType": "Patient", "id": pid, "name": [{"family": "Test", "given": [pid]}]})
        for pid in (PATIENT, OTHER_PATIENT)
    ]
    entries += [_put(o) for o in OBSERVATIONS]
    entries.append(
        _put(
            {
                "resourceType": "Medication",
                "id": "lfs-med-1",
                "code": {
                    "text": "Insulin (porcine)",
                    "coding": [
                        {
                            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                            "code": "5856",
                            "display": "Insulin",
                        }
                    ],
                },
            }
        )
    )
    entries.append(
        _put(
            {
                "resourceType": "MedicationRequest",
                "id": "lfs-mr-1",
                "status": "active",
                "intent": "order",
                "subject": {"reference": f"Patient/{PATIENT}"},
                "medicationReference": {"reference": "Medication/lfs-med-1"},
            }
        )
    )
    # A POSTed resource, referenced by urn:uuid from a PUT entry: the server assigns the id and rewrites it.
    entries.append(
        {
            "fullUrl": POSTED_OBS,
            "resource": {
                **_obs("client-chosen-id", PATIENT, LOINC, "14749-6", "2024-01-01T08:00:00Z"),
                "subject": {"reference": f"Patient/{OTHER_PATIENT}"},
            },
            "request": {"method": "POST", "url": "Observation"},
        }
    )
    entries.append(
        _put(
            {
                "resourceType": "DiagnosticReport",
                "id": "lfs-dr-1",
                "status": "final",
                "code": {"text": "Glucose"},
                "subject": {"reference": f"Patient/{OTHER_PATIENT}"},
                "result": [{"reference": POSTED_OBS}],
            }
        )
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.fixture(scope="module")
def loaded(fhir_server: LocalFhirServer) -> dict[str, Any]:
    """The module's data, loaded once through a transaction Bundle; returns the response Bundle."""
    return fhir_server.load_bundle(_bundle())


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == relation), None)


# ------------------------------------------------------------------------------------------ writes


def test_transaction_put_entries_keep_their_ids(fhir_server: LocalFhirServer, loaded: dict[str, Any]) -> None:
    statuses = [e["response"]["status"] for e in loaded["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses
    assert fhir_server.get(f"Patient/{PATIENT}")["id"] == PATIENT
    assert fhir_server.get("Observation/lfs-glu-2")["effectiveDateTime"] == "2024-03-05T08:00:00Z"
    assert fhir_server.get("MedicationRequest/lfs-mr-1")["medicationReference"] == {
        "reference": "Medication/lfs-med-1"
    }


def test_posted_resources_get_server_ids_and_urn_uuid_references_are_rewritten(
    fhir_server: LocalFhirServer, loaded: dict[str, Any]
) -> None:
    posted = next(
        e
        for e in loaded["entry"]
        if e["resource"].get("valueQuantity") and e["resource"]["code"]["coding"][0]["code"] == "14749-6"
    )
    server_id = posted["resource"]["id"]
    assert server_id != "client-chosen-id"  # the id in a POSTed resource is ignored
    report = fhir_server.get("DiagnosticReport/lfs-dr-1")
    assert report["result"] == [{"reference": f"Observation/{server_id}"}]


def test_put_creates_then_updates_with_the_same_id(fhir_server: LocalFhirServer) -> None:
    first = fhir_server.put({"resourceType": "Patient", "id": "lfs-put", "gender": "female"})
    second = fhir_server.put({"resourceType": "Patient", "id": "lfs-put", "gender": "male"})
    assert (first["id"], first["meta"]["versionId"]) == ("lfs-put", "1")
    assert (second["id"], second["meta"]["versionId"]) == ("lfs-put", "2")
    assert fhir_server.get("Patient/lfs-put")["gender"] == "male"


def test_failed_transaction_raises_with_the_outcome_text_and_is_rolled_back(
    fhir_server: LocalFhirServer,
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _put({"resourceType": "Patient", "id": "lfs-rollback"}),
            {
                "resource": {"resourceType": "Patient", "id": "lfs-a"},
                "request": {"method": "PUT", "url": "Patient/lfs-b"},
            },
        ],
    }
    with pytest.raises(FhirServerError, match="does not match URL id") as failure:
        fhir_server.load_bundle(bundle)
    assert failure.value.status == 400
    with pytest.raises(FhirServerError) as missing:
        fhir_server.get("Patient/lfs-rollback")
    assert missing.value.status == 404


def test_inbound_validation_warn_stores_unknown_elements(fhir_server: LocalFhirServer) -> None:
    """validation.inbound=warn: the server keeps what it is sent, even elements R4 does not have."""
    stored = fhir_server.put(
        {"resourceType": "Basic", "id": "lfs-basic", "code": {"text": "x"}, "notAnElement": 1}
    )
    assert stored["notAnElement"] == 1


# ------------------------------------------------------------------------------------------ search


def test_code_search_honours_the_system(fhir_server: LocalFhirServer, loaded: dict[str, Any]) -> None:
    bundle = fhir_server.get("Observation", {"patient": PATIENT, "code": f"{LOINC}|2345-7,{LOINC}|4548-4"})
    # lfs-local-glu has code 2345-7 in a local system; lfs-other-glu belongs to another patient.
    assert sorted(_ids(bundle)) == ["lfs-a1c-1", "lfs-glu-1", "lfs-glu-2", "lfs-glu-3"]
    assert bundle["total"] == 4


def test_code_search_without_system_matches_any_system(
    fhir_server: LocalFhirServer, loaded: dict[str, Any]
) -> None:
    bundle = fhir_server.get("Observation", {"patient": PATIENT, "code": "2345-7"})
    assert sorted(_ids(bundle)) == ["lfs-glu-1", "lfs-glu-2", "lfs-glu-3", "lfs-local-glu"]


def test_patient_accepts_a_plain_id_and_a_reference(
    fhir_server: LocalFhirServer, loaded: dict[str, Any]
) -> None:
    plain = fhir_server.get("Observation", {"patient": PATIENT})
    reference = fhir_server.get("Observation", {"patient": f"Patient/{PATIENT}"})
    subject = fhir_server.get("Observation", {"subject": f"Patient/{PATIENT}"})
    assert set(_ids(plain)) == set(_ids(reference)) == set(_ids(subject)) == PATIENT_OBS


def test_category_search(fhir_server: LocalFhirServer, loaded: dict[str, Any]) -> None:
    labs = PATIENT_OBS - {"lfs-hr"}
    assert set(_ids(fhir_server.get("Observation", {"patient": PATIENT, "category": "laboratory"}))) == labs
    with_system = fhir_server.get(
        "Observation", {"patient": PATIENT, "category": f"{OBS_CATEGORY}|laboratory"}
    )
    assert set(_ids(with_system)) == labs
    vitals = fhir_server.get("Observation", {"patient": PATIENT, "category": "vital-signs"})
    assert _ids(vitals) == ["lfs-hr"]


def test_status_and_date_search(fhir_server: LocalFhirServer, loaded: dict[str, Any]) -> None:
    bundle = fhir_server.get(
        "Observation",
        [
            ("patient", PATIENT),
            ("code", f"{LOINC}|2345-7"),
            ("status", "final,amended,corrected"),
            ("date", "ge2024-02-01"),
        ],
    )
    assert _ids(bundle) == ["lfs-glu-2"]
    both_bounds = fhir_server.get(
        "Observation", [("patient", PATIENT), ("date", "ge2024-01-01"), ("date", "lt2024-02-01")]
    )
    assert sorted(_ids(both_bounds)) == ["lfs-glu-1", "lfs-local-glu"]


def test_sort_by_date_descending(fhir_server: LocalFhirServer, loaded: dict[str, Any]) -> None:
    bundle = fhir_server.get("Observation", {"patient": PATIENT, "_sort": "-date"})
    dates = [e["resource"]["effectiveDateTime"] for e in bundle["entry"]]
    assert len(dates) == len(PATIENT_OBS)
    assert dates == sorted(dates, reverse=True)
    assert _ids(bundle)[0] == "lfs-glu-2"


def test_count_pages_with_absolute_next_links(fhir_server: LocalFhirServer, loaded: dict[str, Any]) -> None:
    page = fhir_server.get("Observation", {"patient": PATIENT, "_sort": "date", "_count": "2"})
    assert page["total"] == len(PATIENT_OBS)
    seen = _ids(page)
    assert len(seen) == 2
    next_url = _link(page, "next")
    # Offset paging: absolute links on the configured base_url, carrying the search, _count and _offset.
    assert next_url is not None and next_url.startswith(fhir_server.base_url + "/Observation?")
    assert "_count=2" in next_url and "_offset=2" in next_url and f"patient={PATIENT}" in next_url
    pages = 1
    while next_url:
        page = fhir_server.get(next_url)
        seen += _ids(page)
        next_url = _link(page, "next")
        pages += 1
    assert pages == 4  # 7 resources, 2 per page
    assert len(seen) == len(set(seen)) and set(seen) == PATIENT_OBS
    assert _link(page, "previous") is not None


def test_include_returns_the_referenced_medication(
    fhir_server: LocalFhirServer, loaded: dict[str, Any]
) -> None:
    bundle = fhir_server.get(
        "MedicationRequest", {"patient": PATIENT, "_include": "MedicationRequest:medication"}
    )
    assert _ids(bundle, "match") == ["lfs-mr-1"]
    assert _ids(bundle, "include") == ["lfs-med-1"]
    included = next(e for e in bundle["entry"] if e["search"]["mode"] == "include")
    assert included["resource"]["resourceType"] == "Medication"
    assert included["fullUrl"] == f"{fhir_server.base_url}/Medication/lfs-med-1"
    assert bundle["total"] == 1  # total counts matches only


def test_unknown_parameters_are_ignored_with_a_warning_entry(
    fhir_server: LocalFhirServer, loaded: dict[str, Any]
) -> None:
    """Not silent, strictly: the 200 Bundle carries an OperationOutcome entry (search.mode=outcome)."""
    bundle = fhir_server.get("Observation", {"patient": PATIENT, "not-a-param": "x"})
    assert set(_ids(bundle)) == PATIENT_OBS  # the filter was dropped, not applied
    outcomes = _ids(bundle, "outcome")
    assert len(outcomes) == 1
    outcome = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome")
    assert outcome["issue"][0]["severity"] == "warning"
    assert "not-a-param" in outcome["issue"][0]["diagnostics"]
    assert "not-a-param" not in (_link(bundle, "self") or "")
    # Prefer: handling=strict turns the same query into a 400.
    strict = fhir_server.request(
        "GET",
        "Observation",
        params={"patient": PATIENT, "not-a-param": "x"},
        headers={"Prefer": "handling=strict"},
    )
    assert strict.status_code == 400


# ------------------------------------------------------------------------------------------ auth


def test_bearer_token_is_enforced_and_metadata_is_open(
    fhir_server: LocalFhirServer, loaded: dict[str, Any]
) -> None:
    url = f"{fhir_server.base_url}/Patient/{PATIENT}"
    no_token = requests.get(url, timeout=10)
    wrong_token = requests.get(url, headers={"Authorization": "Bearer not-the-token"}, timeout=10)
    right_token = requests.get(url, headers={"Authorization": f"Bearer {fhir_server.token}"}, timeout=10)
    for answer in (no_token, wrong_token):
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert right_token.status_code == 200 and right_token.json()["id"] == PATIENT

    metadata = requests.get(f"{fhir_server.base_url}/metadata", timeout=10)
    assert metadata.status_code == 200
    capability = metadata.json()
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"


def test_fixture_token_is_the_one_the_server_requires(
    fhir_server: LocalFhirServer, fhir_server_token: str
) -> None:
    assert fhir_server.tokens == [fhir_server_token]


def test_open_server_needs_no_token(open_fhir_server: LocalFhirServer) -> None:
    open_fhir_server.put({"resourceType": "Patient", "id": "lfs-open"})
    answer = requests.get(f"{open_fhir_server.base_url}/Patient/lfs-open", timeout=10)
    assert answer.status_code == 200 and answer.json()["id"] == "lfs-open"


# ------------------------------------------------------------------------------------------ CORS


def test_cors_headers_are_sent_to_browsers(fhir_server: LocalFhirServer, loaded: dict[str, Any]) -> None:
    """Finding: sekmet allows any origin, so the Sandbox can read it directly (no CORS proxy needed)."""
    origin = "https://sandbox.cds-hooks.org"
    preflight = requests.options(
        f"{fhir_server.base_url}/Observation",
        timeout=10,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()

    get = fhir_server.request("GET", f"Patient/{PATIENT}", headers={"Origin": origin})
    assert get.json()["id"] == PATIENT
    assert get.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in get.headers["Access-Control-Expose-Headers"]

    refused = requests.get(
        f"{fhir_server.base_url}/Patient/{PATIENT}", headers={"Origin": origin}, timeout=10
    )
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "*"


# ------------------------------------------------------------------------------------------ lifecycle


def _sekmet_processes(data_dir: Path) -> list[str]:
    ps = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in ps.splitlines() if "sekmet" in line and str(data_dir) in line]


def test_start_and_stop_leave_nothing_running(tmp_path: Path, fhir_server: LocalFhirServer) -> None:
    server = LocalFhirServer(tmp_path, tokens=["t"], venv=fhir_server.venv)
    with server:
        assert server.running
        assert _sekmet_processes(tmp_path)
        assert server.base_url != fhir_server.base_url  # a free port of its own
        settings = (tmp_path / "settings.yaml").read_text()
        assert server.base_url in settings and '"enabled": false' in settings
        server.put({"resourceType": "Patient", "id": "lfs-tmp"})
        started = time.monotonic()
    stop_seconds = time.monotonic() - started
    assert not server.running and not _sekmet_processes(tmp_path)
    assert stop_seconds < 10
    assert (tmp_path / "data" / "sekmet.db").exists()
    assert "Finished server process" in server.log_path.read_text()
    server.stop()  # idempotent
