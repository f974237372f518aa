"""With JWT verification on: the audit trail names the client (iss, sub, kid, jti) of each call, and a
refused token is audited and counted by reason in the metrics (issue 11 items 5 and 6)."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from cds_hooks.security.jwt_verification import VerifiedToken
from tests.builders import porcine_request
from tests.security.jwt_helpers import ISS, SERVICE_AUD, SERVICE_PATH, bearer, token


def _events(app) -> list[dict[str, Any]]:
    rt = app.extensions["cds_hooks"]
    rt.recorder.flush()
    return [json.loads(e) for e in rt.store.audit_events()]


def _rejections(client, reason: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "cds_hooks_jwt_rejections_total" and s.labels.get("reason") == reason
    )


def test_the_audit_event_names_the_verified_client(make_app, trusted, es384):
    app = make_app(trusted)
    tok = token(es384, SERVICE_AUD, sub="ehr-client-7", jti="jti-audit-1")
    r = app.test_client().post(SERVICE_PATH, json=porcine_request("jwt-p"), headers=bearer(tok))
    assert r.status_code == 200
    (event,) = _events(app)
    client = event["agent"][0]
    expected_sub = "ehr-client-7" if "sub" in VerifiedToken.__dataclass_fields__ else "(no sub)"
    assert client["who"]["identifier"] == {"system": ISS, "value": expected_sub}
    assert client["policy"] == ["jti-audit-1"]
    assert client["extension"][0]["valueString"] == es384.kid
    assert event["outcome"] == "0"


def test_a_refused_token_is_audited_and_counted_by_reason(make_app, trusted, es384):
    app = make_app(trusted, metrics=True)
    client = app.test_client()
    missing, expired = _rejections(client, "missing"), _rejections(client, "expired")
    assert client.post(SERVICE_PATH, json=porcine_request()).status_code == 401
    old = token(es384, SERVICE_AUD, iat=1_700_000_000, exp=1_700_000_300)
    assert client.post(SERVICE_PATH, json=porcine_request(), headers=bearer(old)).status_code == 401
    assert _rejections(client, "missing") == missing + 1
    assert _rejections(client, "expired") == expired + 1
    refused = _events(app)
    assert [e["outcome"] for e in refused] == ["4", "4"]
    assert all(e["agent"][0]["who"] == {"display": "unauthenticated client"} for e in refused)
