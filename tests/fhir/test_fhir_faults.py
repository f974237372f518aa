"""Faults of the FHIR server (issue: security §2): each gives a bounded-time 412 OperationOutcome, tested
against a real local HTTP server that misbehaves on purpose."""

from __future__ import annotations

import time

import pytest

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from tests.builders import SERVICE_URL, bundle, empty_prefetch, patient, request
from tests.conftest import make_settings
from tests.misbehaving_server import misbehaving_server


def _client(tmp_path, **overrides):
    overrides.setdefault("fhir_retries", 0)
    return create_app(make_settings(tmp_path, **overrides), knowledge=default_knowledge()).test_client()


def _call(client, url: str, pid: str = "fault"):
    prefetch = empty_prefetch(pid)
    del prefetch["conditions"]  # the one key the service must fetch
    started = time.monotonic()
    response = client.post(SERVICE_URL, json=request(pid, prefetch, fhirServer=url))
    return response, time.monotonic() - started


def _assert_412(response, mentions: str) -> None:
    assert response.status_code == 412, response.get_data(as_text=True)
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "conditions" in outcome["issue"][0]["diagnostics"]
    assert mentions in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(("status", "mentions"), [(404, "404"), (429, "429"), (500, "500")])
def test_error_statuses(tmp_path, status, mentions):
    with misbehaving_server(lambda p, h: (status, {"resourceType": "OperationOutcome"})) as (url, _):
        response, _ = _call(_client(tmp_path), url)
    _assert_412(response, mentions)


def test_invalid_json(tmp_path):
    with misbehaving_server(lambda p, h: (200, b"{this is not json")) as (url, _):
        response, _ = _call(_client(tmp_path), url)
    _assert_412(response, "not JSON")


def test_a_non_bundle_answer_to_a_search(tmp_path):
    with misbehaving_server(lambda p, h: (200, patient("x"))) as (url, _):
        response, _ = _call(_client(tmp_path), url)
    _assert_412(response, "not a Bundle")


def test_dns_failure(tmp_path):
    response, elapsed = _call(_client(tmp_path), "http://no-such-host.invalid/fhir")
    _assert_412(response, "")
    assert elapsed < 10


def test_slow_drip_is_cut_off_by_the_total_deadline(tmp_path):
    def drip(wfile):
        wfile.write(b'{"resourceType": "Bundle", "type": "searchset", "entry": [')
        for _ in range(40):  # one byte every 0.1 s: never trips the per-read timeout
            wfile.write(b" ")
            wfile.flush()
            time.sleep(0.1)
        wfile.write(b"]}")

    with misbehaving_server(lambda p, h: (200, drip)) as (url, _):
        response, elapsed = _call(_client(tmp_path, fhir_total_timeout=1.0, fhir_read_timeout=2.0), url)
    _assert_412(response, "took longer than 1 s")
    assert elapsed < 3.5


def test_huge_response_is_refused(tmp_path):
    big = bundle(*[patient(f"p{i}") for i in range(3000)])  # ~200 kB
    with misbehaving_server(lambda p, h: (200, big)) as (url, _):
        response, _ = _call(_client(tmp_path, fhir_max_response_bytes=64 * 1024), url)
    _assert_412(response, "larger than 65536 bytes")


def test_huge_response_without_content_length_is_cut_off(tmp_path):
    def endless(wfile):
        wfile.write(b'{"resourceType": "Bundle", "entry": [')
        try:
            for _ in range(10_000):
                wfile.write(b'{"resource": {"resourceType": "Basic"}},' * 100)
        except (BrokenPipeError, ConnectionResetError):
            pass

    with misbehaving_server(lambda p, h: (200, endless)) as (url, _):
        response, elapsed = _call(_client(tmp_path, fhir_max_response_bytes=256 * 1024), url)
    _assert_412(response, "larger than")
    assert elapsed < 10


def test_too_many_resources_is_413(tmp_path):
    client = _client(tmp_path, max_resources=50)
    prefetch = empty_prefetch("many")
    prefetch["conditions"] = bundle(*[{"resourceType": "Basic", "id": f"b{i}"} for i in range(60)])
    response = client.post(SERVICE_URL, json=request("many", prefetch))
    assert response.status_code == 413
    assert "at most 50" in response.get_json()["issue"][0]["diagnostics"]
