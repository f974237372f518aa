"""GET /metrics (issue 11 item 5): off unless enabled, optionally behind a bearer token; requests by
service/hook/status with latency, cards by rule and indicator, feedback by outcome, fallback fetches."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.process.config import ConfigError
from cds_hooks.process.metrics import jwt_reason_label
from tests.builders import SERVICE, SERVICE_URL, porcine_request
from tests.conftest import make_settings


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_app(tmp_path: Path):
    app = create_app(
        make_settings(tmp_path, metrics=True, metrics_token="s3cret-scrape"), knowledge=default_knowledge()
    )
    yield app
    app.extensions["cds_hooks"].store.dispose()


def _scrape(client, token: str = "s3cret-scrape") -> str:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.content_type.startswith("text/plain")
    return r.get_data(as_text=True)


def test_metrics_are_off_by_default(client):
    r = client.get("/metrics")
    assert r.status_code == 404
    assert r.get_json()["resourceType"] == "OperationOutcome"


def test_metrics_need_the_token_when_one_is_set(metrics_app):
    client = metrics_app.test_client()
    assert client.get("/metrics").status_code == 401
    r = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    _scrape(client)


def test_production_mode_refuses_metrics_without_a_token(tmp_path: Path):
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        make_settings(tmp_path, metrics=True, mode="production", fhir_allowlist="https://fhir.example.org/")


def test_requests_cards_and_feedback_are_counted(metrics_app):
    client = metrics_app.test_client()
    before = _scrape(client)
    labels = {"endpoint": "service", "service": SERVICE, "hook": "patient-view", "status": "200"}
    card = client.post(SERVICE_URL, json=porcine_request("m1")).get_json()["cards"][0]
    client.post(SERVICE_URL, json=porcine_request("m2"))
    client.post(SERVICE_URL, data="{", content_type="application/json")
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-27T10:05:31Z",
        "overrideReason": {"userComment": "no"},
    }
    assert client.post(SERVICE_URL + "/feedback", json={"feedback": [item]}).status_code == 200
    after = _scrape(client)

    def delta(name: str, **lbl: str) -> float:
        return value(after, name, **lbl) - value(before, name, **lbl)

    assert delta("cds_hooks_requests_total", **labels) == 2
    assert delta("cds_hooks_request_duration_seconds_count", **labels) == 2
    assert delta("cds_hooks_request_duration_seconds_bucket", **labels, le="+Inf") == 2
    assert delta("cds_hooks_requests_total", **{**labels, "status": "400"}) == 1
    rule, indicator = card["source"]["topic"]["code"], card["indicator"]
    assert delta("cds_hooks_cards_total", service=SERVICE, rule=rule, indicator=indicator) == 2
    assert delta("cds_hooks_feedback_items_total", service=SERVICE, outcome="overridden") == 1


def test_fhir_fallback_fetches_are_counted_by_outcome(metrics_app):
    client = metrics_app.test_client()
    before = _scrape(client)
    body = porcine_request("m3")
    del body["prefetch"]["conditions"]
    body["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens: the fetch fails
    assert client.post(SERVICE_URL, json=body).status_code == 412
    after = _scrape(client)
    assert (
        value(after, "cds_hooks_fhir_fallback_total", outcome="failed")
        - value(before, "cds_hooks_fhir_fallback_total", outcome="failed")
        == 1
    )
    assert value(after, "cds_hooks_fhir_fallback_duration_seconds_count", outcome="failed") >= 1


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("no Authorization header", "missing"),
        ("malformed token (DecodeError)", "malformed"),
        ("issuer is not trusted", "untrusted_issuer"),
        ("ExpiredSignatureError: Signature has expired", "expired"),
        ("InvalidAudienceError: Audience doesn't match", "audience"),
        ("jti was already used (replay)", "replay"),
        ("alg HS256 is not on the allowlist ['ES384']", "algorithm"),
        ("kid is not among the issuer's configured keys", "key_not_found"),
        ("something new", "other"),
    ],
)
def test_jwt_rejection_reasons_map_to_a_few_labels(reason: str, label: str):
    assert jwt_reason_label(reason) == label
