"""Prefetch per key (P6–P10) and the FHIR fallback (F1–F3), against the real sekmet-fhir server."""

from __future__ import annotations

import pytest

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.hooks.prefetch import TemplateError, fill_template
from cds_hooks.hooks.registry import prefetch_templates
from tests.builders import (
    SERVICE_URL,
    bundle,
    empty_prefetch,
    patient,
    porcine_statement,
    request,
    topics,
    transaction,
)
from tests.misbehaving_server import misbehaving_server


@pytest.fixture(scope="module")
def loaded(fhir_server):
    """Patient pf-1 on the server with an active porcine-insulin statement (ids are test-unique)."""
    pid = "pf-1"
    entries = [patient(pid), porcine_statement(pid, "pf-1-ms")]
    entries += [dict(porcine_statement(pid, f"pf-1-old-{i}", status="entered-in-error")) for i in range(3)]
    fhir_server.load_bundle(transaction(*entries))
    return pid


def call(client, fhir_server, pid, prefetch, token=True):
    extra = {"fhirServer": fhir_server.base_url}
    if token:
        extra["fhirAuthorization"] = {
            "access_token": fhir_server.token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
        }
    return client.post(SERVICE_URL, json=request(pid, prefetch, **extra))


def test_p6_key_present_with_data_is_used_without_fetching(client):
    prefetch = empty_prefetch("nobody")
    prefetch["medicationStatements"] = bundle(porcine_statement("nobody"))
    r = client.post(SERVICE_URL, json=request("nobody", prefetch))  # no fhirServer at all
    assert r.status_code == 200
    assert topics(r.get_json()) == ["animal-insulin-switch"]


def test_p8_empty_bundle_means_no_data_and_is_not_fetched(client, fhir_server, loaded):
    r = call(client, fhir_server, loaded, empty_prefetch(loaded))
    assert r.status_code == 200
    assert r.get_json() == {"cards": []}  # the server's porcine statement was not fetched


def test_p8_null_means_no_data_and_is_not_fetched(client, fhir_server, loaded):
    prefetch = empty_prefetch(loaded)
    prefetch["medicationStatements"] = None
    r = call(client, fhir_server, loaded, prefetch)
    assert r.status_code == 200 and r.get_json() == {"cards": []}


def test_p10_absent_key_is_fetched_from_the_fhir_server(client, fhir_server, loaded):
    prefetch = empty_prefetch(loaded)
    del prefetch["medicationStatements"]
    r = call(client, fhir_server, loaded, prefetch)
    assert r.status_code == 200
    assert topics(r.get_json()) == ["animal-insulin-switch"]


def test_p7_operation_outcome_value_is_fetched(client, fhir_server, loaded):
    prefetch = empty_prefetch(loaded)
    prefetch["medicationStatements"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "EHR prefetch timed out"}],
    }
    r = call(client, fhir_server, loaded, prefetch)
    assert r.status_code == 200
    assert topics(r.get_json()) == ["animal-insulin-switch"]


def test_p9_bundle_with_next_link_is_followed(client, fhir_server, loaded):
    # The EHR sent the first page only: the active statement is reachable through the next link.
    first = fhir_server.get("MedicationStatement", {"patient": loaded, "status": "entered-in-error"})
    assert first["entry"] and all(e["resource"]["status"] == "entered-in-error" for e in first["entry"])
    page = bundle(
        *(e["resource"] for e in first["entry"]),
        next_url=f"{fhir_server.base_url}/MedicationStatement?patient={loaded}&status=active",
    )
    prefetch = empty_prefetch(loaded)
    prefetch["medicationStatements"] = page
    r = call(client, fhir_server, loaded, prefetch)
    assert r.status_code == 200
    assert topics(r.get_json()) == ["animal-insulin-switch"]


def test_no_prefetch_at_all_fetches_everything(client, fhir_server, loaded):
    r = call(client, fhir_server, loaded, None)
    assert r.status_code == 200
    assert topics(r.get_json()) == ["animal-insulin-switch"]


def test_read_template_accepts_a_single_resource_or_a_bundle(client):
    for patient_value in (patient("pr"), bundle(patient("pr"))):
        prefetch = empty_prefetch("pr")
        prefetch["patient"] = patient_value
        prefetch["medicationStatements"] = bundle(porcine_statement("pr"))
        r = client.post(SERVICE_URL, json=request("pr", prefetch))
        assert r.status_code == 200 and topics(r.get_json()) == ["animal-insulin-switch"]


def test_p10_missing_data_without_fhir_server_is_412_naming_the_keys(client):
    prefetch = empty_prefetch("p412")
    del prefetch["conditions"]
    del prefetch["labResults"]
    r = client.post(SERVICE_URL, json=request("p412", prefetch))
    assert r.status_code == 412
    outcome = r.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "conditions" in outcome["issue"][0]["diagnostics"]
    assert "labResults" in outcome["issue"][0]["diagnostics"]
    assert set(outcome["issue"][0]["expression"]) == {"prefetch.conditions", "prefetch.labResults"}


def test_f1_wrong_token_gives_412_not_cards(client, fhir_server, loaded):
    prefetch = empty_prefetch(loaded)
    del prefetch["medicationStatements"]
    body = request(
        loaded,
        prefetch,
        fhirServer=fhir_server.base_url,
        fhirAuthorization={
            "access_token": "wrong-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
        },
    )
    r = client.post(SERVICE_URL, json=body)
    assert r.status_code == 412
    diagnostics = r.get_json()["issue"][0]["diagnostics"]
    assert "medicationStatements" in diagnostics and "401" in diagnostics
    assert "wrong-token" not in r.get_data(as_text=True)


def test_f3_no_token_against_a_server_requiring_one_is_412(client, fhir_server, loaded):
    prefetch = empty_prefetch(loaded)
    del prefetch["medicationStatements"]
    r = call(client, fhir_server, loaded, prefetch, token=False)
    assert r.status_code == 412


def test_f3_open_server_without_token_works(client, open_fhir_server):
    pid = "open-1"
    open_fhir_server.put(patient(pid))
    open_fhir_server.put(porcine_statement(pid, "open-1-ms"))
    r = client.post(SERVICE_URL, json=request(pid, None, fhirServer=open_fhir_server.base_url))
    assert r.status_code == 200 and topics(r.get_json()) == ["animal-insulin-switch"]


def test_unreachable_server_is_412(client):
    prefetch = empty_prefetch("unreach")
    del prefetch["conditions"]
    r = client.post(SERVICE_URL, json=request("unreach", prefetch, fhirServer="http://127.0.0.1:9/fhir"))
    assert r.status_code == 412
    assert "could not be reached" in r.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("status", [403, 500, 503])
def test_server_errors_are_412(client, status):
    with misbehaving_server(lambda path, headers: (status, {"resourceType": "OperationOutcome"})) as (url, _):
        prefetch = empty_prefetch("err")
        del prefetch["conditions"]
        r = client.post(SERVICE_URL, json=request("err", prefetch, fhirServer=url))
    assert r.status_code == 412
    assert str(status) in r.get_json()["issue"][0]["diagnostics"]


def test_missing_keys_are_fetched_concurrently(client):
    def answer(path, headers):
        if path.startswith("/fhir/Patient/"):
            return 200, patient("conc")
        return 200, bundle()

    with misbehaving_server(answer, delay=0.3) as (url, recorder):
        r = client.post(SERVICE_URL, json=request("conc", None, fhirServer=url))
    assert r.status_code == 200
    assert len(recorder.paths) == len(prefetch_templates(default_knowledge()))  # one call per key
    assert recorder.max_active >= 3  # eight keys, six workers by default: they overlap


def test_next_links_are_followed_up_to_the_configured_cap(tmp_path):
    from cds_hooks.app import create_app
    from cds_hooks.clinical.knowledge import default_knowledge
    from tests.conftest import make_settings

    def endless(path, headers):
        n = int(path.rsplit("page=", 1)[1]) if "page=" in path else 0
        return 200, bundle(next_url=f"{url}/Condition?patient=cap&page={n + 1}")

    with misbehaving_server(endless) as (url, recorder):
        app = create_app(make_settings(tmp_path, fhir_max_pages=4), knowledge=default_knowledge())
        prefetch = empty_prefetch("cap")
        del prefetch["conditions"]
        r = app.test_client().post(SERVICE_URL, json=request("cap", prefetch, fhirServer=url))
    assert r.status_code == 412
    assert "paging limit" in r.get_json()["issue"][0]["diagnostics"]
    assert len(recorder.paths) == 4


def test_token_is_sent_only_to_the_fhir_server_origin(client):
    with misbehaving_server(lambda p, h: (200, bundle())) as (other_url, other):

        def first_page(path, headers):
            return 200, bundle(next_url=f"{other_url}/Condition?page=2")

        with misbehaving_server(first_page) as (url, own):
            prefetch = empty_prefetch("tok")
            del prefetch["conditions"]
            body = request(
                "tok",
                prefetch,
                fhirServer=url,
                fhirAuthorization={
                    "access_token": "s3cret",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "patient/*.read",
                    "subject": "cds",
                },
            )
            r = client.post(SERVICE_URL, json=body)
    assert r.status_code == 200
    assert own.headers[0]["Authorization"] == "Bearer s3cret"
    assert len(other.headers) == 1 and "Authorization" not in other.headers[0]


def test_template_tokens_are_filled_from_context_and_user():
    context = {"patientId": "123", "userId": "Practitioner/abc", "encounterId": "e9"}
    assert fill_template("Patient/{{context.patientId}}", context) == "Patient/123"
    assert fill_template("Encounter/{{context.encounterId}}", context) == "Encounter/e9"
    assert fill_template("Practitioner/{{userPractitionerId}}", context) == "Practitioner/abc"
    assert fill_template("PractitionerRole?x={{userPractitionerRoleId}}", context) == "PractitionerRole?x="
    assert (
        fill_template("RelatedPerson/{{userRelatedPersonId}}", {"userId": "RelatedPerson/r1"})
        == "RelatedPerson/r1"
    )
    assert fill_template("Patient/{{userPatientId}}", {"userId": "Patient/p7"}) == "Patient/p7"
    with pytest.raises(TemplateError):
        fill_template("Observation?patient={{context.missing}}", context)


def test_f2_read_timeout_gives_a_bounded_412(tmp_path):
    import time

    from cds_hooks.app import create_app
    from cds_hooks.clinical.knowledge import default_knowledge
    from tests.conftest import make_settings

    with misbehaving_server(lambda p, h: (200, bundle()), delay=3.0) as (url, _):
        app = create_app(
            make_settings(tmp_path, fhir_read_timeout=0.5, fhir_retries=0), knowledge=default_knowledge()
        )
        prefetch = empty_prefetch("slow")
        del prefetch["conditions"]
        started = time.monotonic()
        r = app.test_client().post(SERVICE_URL, json=request("slow", prefetch, fhirServer=url))
        elapsed = time.monotonic() - started
    assert r.status_code == 412
    assert "did not answer within 0.5 s" in r.get_json()["issue"][0]["diagnostics"]
    assert elapsed < 2.5  # bounded by the read timeout, not by the server's 3 s delay


def test_medication_referenced_but_not_sent_is_read_from_the_server(client, fhir_server):
    pid = "ref-1"
    medication = {
        "resourceType": "Medication",
        "id": "ref-1-med",
        "code": {
            "text": "Pork Insulatard",
            "coding": [{"system": "http://www.whocc.no/atc", "code": "A10AC03"}],
        },
    }
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ref-1-ms",
        "status": "active",
        "medicationReference": {"reference": "Medication/ref-1-med"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    fhir_server.put(medication)
    prefetch = empty_prefetch(pid)
    prefetch["medicationStatements"] = bundle(statement)  # the EHR did not include the Medication
    r = call(client, fhir_server, pid, prefetch)
    assert r.status_code == 200
    card = r.get_json()["cards"][0]
    assert card["source"]["topic"]["code"] == "animal-insulin-switch"
    assert "Pork Insulatard" in card["detail"]
    # Same profile: an intermediate-acting animal insulin is replaced by human NPH.
    replacement = card["suggestions"][0]["actions"][0]["resource"]
    assert "isophane" in replacement["medicationCodeableConcept"]["text"].lower()


def _referencing_prefetch(pid: str) -> dict:
    prefetch = empty_prefetch(pid)
    prefetch["medicationRequests"] = bundle(
        {
            "resourceType": "MedicationRequest",
            "id": f"{pid}-mr",
            "status": "active",
            "intent": "order",
            "medicationReference": {"reference": f"Medication/{pid}-med"},
            "subject": {"reference": f"Patient/{pid}"},
        }
    )
    return prefetch


def test_p10_referenced_medication_without_fhir_server_is_412_naming_the_request(client):
    """Issue 25 point 1: the medication decides the card; a prefetch without it and no fhirServer is a 412
    that says which resource's medication could not be read, not an empty answer."""
    r = client.post(SERVICE_URL, json=request("refd", _referencing_prefetch("refd")))
    assert r.status_code == 412
    issue = r.get_json()["issue"][0]
    assert issue["code"] == "processing" and issue["expression"] == ["prefetch.medicationRequests"]
    assert issue["diagnostics"].startswith("Could not read the medication of MedicationRequest/refd-mr")
    assert "no fhirServer" in issue["diagnostics"] and "check the EHR's prefetch" in issue["diagnostics"]


def test_p10_referenced_medication_on_a_failing_server_is_412(client):
    with misbehaving_server(lambda path, headers: (503, {"resourceType": "OperationOutcome"})) as (url, _):
        r = client.post(SERVICE_URL, json=request("refe", _referencing_prefetch("refe"), fhirServer=url))
    assert r.status_code == 412
    assert (
        "MedicationRequest/refe-mr (the FHIR server could not be read)"
        in r.get_json()["issue"][0]["diagnostics"]
    )


def test_a_medication_the_server_says_does_not_exist_is_logged_and_the_rest_evaluated(client, caplog):
    """404 on the EHR's own server: a dangling reference in the record; the medication counts by its text."""
    with misbehaving_server(lambda path, headers: (404, {"resourceType": "OperationOutcome"})) as (url, _):
        r = client.post(SERVICE_URL, json=request("refn", _referencing_prefetch("refn"), fhirServer=url))
    assert r.status_code == 200 and r.get_json() == {"cards": []}
    assert any("could not be resolved" in m for m in caplog.messages)
