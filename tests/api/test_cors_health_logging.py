"""CORS (X8), health check, and the request log (one line per request, never a token)."""

from __future__ import annotations

import logging

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from tests.builders import SERVICE_URL, empty_prefetch, porcine_request, request
from tests.conftest import make_settings


def test_x8_preflight_allows_authorization_and_content_type(client):
    for path in ("/cds-services", SERVICE_URL, f"{SERVICE_URL}/feedback"):
        r = client.options(
            path,
            headers={
                "Origin": "https://sandbox.cds-hooks.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Content-Type",
            },
        )
        assert r.status_code == 200
        assert r.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")
        allowed = r.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "POST" in r.headers["Access-Control-Allow-Methods"]


def test_x8_configured_origins_are_enforced(tmp_path):
    app = create_app(
        make_settings(tmp_path, allowed_origins="https://ehr.example.org"), knowledge=default_knowledge()
    )
    c = app.test_client()
    good = c.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    bad = c.get("/cds-services", headers={"Origin": "https://evil.example.com"})
    assert good.headers.get("Access-Control-Allow-Origin") == "https://ehr.example.org"
    assert "Access-Control-Allow-Origin" not in bad.headers


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json()["status"] == "ok"


def test_one_log_line_per_request_with_hook_instance_and_no_token(client, caplog):
    body = porcine_request()
    body["fhirServer"] = "http://127.0.0.1:9/fhir"
    body["fhirAuthorization"] = {
        "access_token": "tok-abc-123",
        "token_type": "Bearer",
        "expires_in": 60,
        "scope": "patient/*.read",
        "subject": "cds",
    }
    with caplog.at_level(logging.INFO, logger="cds_hooks"):
        r = client.post(SERVICE_URL, json=body, headers={"Authorization": "Bearer eyJhbGciOi.jwt.sig"})
    assert r.status_code == 200
    lines = [rec for rec in caplog.records if rec.name == "cds_hooks.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line.hook_instance == body["hookInstance"]
    assert line.service == "immune-insulin-resistance" and line.status == 200
    assert isinstance(line.duration_ms, float)
    text = caplog.text
    assert "tok-abc-123" not in text and "eyJhbGciOi" not in text
    assert "Hypurin" not in text and "Patient/p1" not in text  # no patient data


def test_json_log_format(tmp_path, capsys):
    import json as jsonlib

    from cds_hooks.process.log_config import JsonFormatter

    record = logging.LogRecord("cds_hooks.request", logging.INFO, __file__, 1, "POST %s", ("/x",), None)
    record.status = 200
    record.hook_instance = "abc"
    data = jsonlib.loads(JsonFormatter().format(record))
    assert data["message"] == "POST /x" and data["status"] == 200 and data["hook_instance"] == "abc"


def test_internal_errors_are_generic_500_outcomes(client, app, monkeypatch, caplog):
    import cds_hooks.hooks.pipeline as pipeline_module

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(pipeline_module, "evaluate_hook", boom)
    r = client.post(SERVICE_URL, json=request("x", empty_prefetch("x")))
    assert r.status_code == 500
    text = r.get_data(as_text=True)
    assert "OperationOutcome" in text and "secret internal detail" not in text and "Traceback" not in text
