"""Request validation: every refusal is a 4xx with an OperationOutcome (R1–R3, E3, E4)."""

from __future__ import annotations

import json

import pytest

from tests.builders import SERVICE_URL, porcine_request, request


def assert_outcome(response, status: int, mentions: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    body = response.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["severity"] == "error" and issue["code"]
    assert mentions.lower() in issue["diagnostics"].lower()
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "<html" not in text.lower()
    return body


def test_e3_malformed_json_is_400(client):
    r = client.post(SERVICE_URL, data="{not json", content_type="application/json")
    assert_outcome(r, 400, "not valid JSON")


def test_e3_wrong_content_type_is_400(client):
    r = client.post(SERVICE_URL, data=json.dumps(porcine_request()), content_type="text/plain")
    assert_outcome(r, 400, "Content-Type")


@pytest.mark.parametrize("member", ["hook", "hookInstance", "context"])
def test_e4_missing_required_member_is_400(client, member):
    body = porcine_request()
    del body[member]
    assert_outcome(client.post(SERVICE_URL, json=body), 400, member)


def test_missing_patient_id_is_400(client):
    body = porcine_request()
    del body["context"]["patientId"]
    assert_outcome(client.post(SERVICE_URL, json=body), 400, "context.patientId")


def test_r3_hook_not_matching_the_service_is_400(client):
    body = porcine_request()
    body["hook"] = "order-sign"
    assert_outcome(client.post(SERVICE_URL, json=body), 400, "patient-view")


def test_r2_cds_r_1_authorization_without_fhir_server_is_400(client):
    body = porcine_request()
    body["fhirAuthorization"] = {
        "access_token": "secret-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    body_json = assert_outcome(client.post(SERVICE_URL, json=body), 400, "cds-r-1")
    assert "secret-token" not in json.dumps(body_json)


def test_e4_unknown_service_is_404(client):
    assert_outcome(client.post("/cds-services/no-such-service", json=request()), 404, "no-such-service")


def test_body_over_the_size_limit_is_413(tmp_path):
    from cds_hooks.app import create_app
    from cds_hooks.clinical.knowledge import default_knowledge
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, max_body_bytes=2048), knowledge=default_knowledge())
    body = porcine_request()
    body["prefetch"]["patient"]["text"] = {"status": "generated", "div": "x" * 4000}
    assert_outcome(app.test_client().post(SERVICE_URL, json=body), 413, "larger than the limit")


def test_default_size_limit_is_5_mb(settings):
    assert settings.max_body_bytes == 5 * 1024 * 1024


def test_non_object_body_and_bad_prefetch_value_are_400(client):
    assert_outcome(client.post(SERVICE_URL, json=[1, 2]), 400, "JSON object")
    body = porcine_request()
    body["prefetch"]["conditions"] = ["not", "a", "bundle"]
    assert_outcome(client.post(SERVICE_URL, json=body), 400, "prefetch['conditions']")


def test_unknown_route_and_wrong_method_answer_with_operation_outcome(client):
    assert_outcome(client.get("/nothing-here"), 404, "No such endpoint")
    assert_outcome(client.get(SERVICE_URL), 405, "not allowed")


def test_deeply_nested_json_is_a_clean_400(client):
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post(SERVICE_URL, data=deep, content_type="application/json")
    assert_outcome(r, 400, "nested too deeply")


@pytest.mark.parametrize(
    "value",
    ["timeline-ex24", "1", "d1577c69dfbe44adba6d3e05e953b2ea", "{d1577c69-dfbe-44ad-ba6d-3e05e953b2ea}"],
)
def test_r1_hook_instance_that_is_not_a_uuid_is_400(client, value):
    """R1 (2.0.1: "a UUID"; 3.0: typed ``uuid``): anything else is refused, without echoing it."""
    body = porcine_request()
    body["hookInstance"] = value
    r = client.post(SERVICE_URL, json=body)
    outcome = assert_outcome(r, 400, "'hookInstance' must be a UUID")
    assert outcome["issue"][0]["expression"] == ["hookInstance"]
    if len(value) > 5:
        assert value not in r.get_data(as_text=True)


def test_r1_hook_instance_uuid_in_upper_case_is_accepted(client):
    body = porcine_request()
    body["hookInstance"] = body["hookInstance"].upper()
    assert client.post(SERVICE_URL, json=body).status_code == 200
