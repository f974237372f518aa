"""Safe FHIR fallback (issue: security §2): allowlist, https in production, no loopback/private/link-local
targets unless explicitly allowed — for the base URL and for every next link (SSRF)."""

from __future__ import annotations

import pytest

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.target_policy import FhirPolicy, FhirServerNotAllowed
from tests.builders import SERVICE_URL, bundle, empty_prefetch, request
from tests.conftest import make_settings
from tests.misbehaving_server import misbehaving_server

PUBLIC = {
    "fhir.example.org": ["93.184.216.34"],
    "sneaky.example.org": ["10.0.0.7"],
    "dual.example.org": ["93.184.216.34", "127.0.0.1"],
}


def policy(**kwargs) -> FhirPolicy:
    def resolver(host: str) -> list[str]:
        if host not in PUBLIC:
            raise OSError("no such host")
        return PUBLIC[host]

    return FhirPolicy(resolver=resolver, **kwargs)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/fhir",
        "http://localhost.:1/x",
        "http://[::1]/fhir",
        "http://10.1.2.3/fhir",
        "http://192.168.0.5/fhir",
        "http://172.16.4.4/fhir",
        "http://169.254.169.254/latest/meta-data",
        "http://[fc00::1]/fhir",
        "http://[fe80::1]/fhir",
        "http://[::ffff:127.0.0.1]/fhir",
        "http://0.0.0.0/fhir",
        "http://sneaky.example.org/fhir",
        "http://dual.example.org/fhir",
    ],
)
def test_non_public_targets_are_refused_by_default(url):
    with pytest.raises(FhirServerNotAllowed):
        policy().check(url)


def test_public_target_is_allowed_in_development():
    policy().check("http://fhir.example.org/r4/Patient/1")


def test_allow_private_opens_private_targets():
    policy(allow_private=True).check("http://127.0.0.1:8080/fhir/Observation")


def test_allowlist_restricts_and_explicitly_permits_a_private_host():
    p = policy(allowlist=("https://fhir.example.org/r4/", "http://10.1.2.3:8080/fhir/"))
    p.check("https://fhir.example.org/r4/Observation?patient=1")
    p.check("http://10.1.2.3:8080/fhir/Patient/1")  # named explicitly: allowed although private
    for url in (
        "https://fhir.example.org/other/Patient",
        "https://fhir.example.org.evil.com/r4/",
        "http://10.1.2.3:8081/fhir/Patient/1",
    ):
        with pytest.raises(FhirServerNotAllowed, match="allowlist"):
            p.check(url)


def test_production_requires_https_and_an_allowlist():
    with pytest.raises(FhirServerNotAllowed, match="https"):
        policy(production=True, allowlist=("http://fhir.example.org/",)).check("http://fhir.example.org/x")
    policy(production=True, allow_http=True, allowlist=("http://fhir.example.org/",)).check(
        "http://fhir.example.org/x"
    )
    with pytest.raises(FhirServerNotAllowed, match="ALLOWLIST is empty"):
        policy(production=True).check("https://fhir.example.org/x")
    policy(production=True, allowlist=("https://fhir.example.org/",)).check("https://fhir.example.org/x")


def test_credentials_bad_schemes_and_unresolvable_hosts_are_refused():
    for url in (
        "https://user:pw@fhir.example.org/x",
        "file:///etc/passwd",
        "gopher://fhir.example.org/",
        "https://nowhere.invalid/fhir",
    ):
        with pytest.raises(FhirServerNotAllowed):
            policy().check(url)


def _app(tmp_path, **overrides):
    return create_app(make_settings(tmp_path, **overrides), knowledge=default_knowledge()).test_client()


def test_service_refuses_to_fetch_from_loopback_without_permission(tmp_path):
    client = _app(tmp_path, fhir_allow_private=False)
    with misbehaving_server(lambda p, h: (200, bundle())) as (url, recorder):
        prefetch = empty_prefetch("ssrf")
        del prefetch["conditions"]
        r = client.post(SERVICE_URL, json=request("ssrf", prefetch, fhirServer=url))
    assert r.status_code == 412
    assert "loopback, private or link-local" in r.get_json()["issue"][0]["diagnostics"]
    assert recorder.paths == []  # nothing was sent


def test_next_link_to_a_forbidden_host_is_not_followed(tmp_path):
    with misbehaving_server(
        lambda p, h: (200, bundle(next_url="http://169.254.169.254/latest/meta-data/Condition?page=2"))
    ) as (url, recorder):
        client = _app(tmp_path, fhir_allow_private=False, fhir_allowlist=url)
        prefetch = empty_prefetch("ssrf2")
        del prefetch["conditions"]
        r = client.post(SERVICE_URL, json=request("ssrf2", prefetch, fhirServer=url))
    assert r.status_code == 412
    assert "not on this service's allowlist" in r.get_json()["issue"][0]["diagnostics"]
    assert len(recorder.paths) == 1


def test_production_mode_refuses_http_fhir_servers(tmp_path):
    client = _app(tmp_path, mode="production", fhir_allowlist="http://127.0.0.1")
    prefetch = empty_prefetch("prod")
    del prefetch["conditions"]
    r = client.post(SERVICE_URL, json=request("prod", prefetch, fhirServer="http://127.0.0.1:9/fhir"))
    assert r.status_code == 412 and "https" in r.get_json()["issue"][0]["diagnostics"]


def test_complete_prefetch_needs_no_fhir_server_check(tmp_path):
    """A request whose prefetch is complete is answered even if its fhirServer is not allowed."""
    client = _app(tmp_path, fhir_allow_private=False)
    r = client.post(SERVICE_URL, json=request("ok", empty_prefetch("ok"), fhirServer="http://10.0.0.1/fhir"))
    assert r.status_code == 200 and r.get_json() == {"cards": []}


def test_access_token_is_never_stored(tmp_path, fhir_server):
    """R5: the EHR's token is transient — after a fetching request and feedback, no table holds it."""
    from sqlalchemy import inspect, text

    app = create_app(make_settings(tmp_path), knowledge=default_knowledge())
    client = app.test_client()
    prefetch = empty_prefetch("tok-store")
    del prefetch["conditions"]
    body = request(
        "tok-store",
        prefetch,
        fhirServer=fhir_server.base_url,
        fhirAuthorization={
            "access_token": fhir_server.token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds",
        },
    )
    assert client.post(SERVICE_URL, json=body).status_code == 200
    engine = app.extensions["cds_hooks"].store.engine
    dump = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            dump += [repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]
    assert fhir_server.token not in "".join(dump)
