"""Issue 11.3: real EHR token shapes. The example trusted-issuers files are loaded as committed, and a
token of exactly each EHR's shape is signed with the placeholder key (its private half is in
tests/security/keys/, which is why the examples must never be used as they are)."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from requests.adapters import BaseAdapter
from sqlalchemy import create_engine

from cds_hooks.process.config import ConfigError
from cds_hooks.security.jwt_verification import (
    JwksFetcher,
    JwtRejected,
    JwtVerifier,
    load_trusted_issuers,
    parse_algorithms,
)
from cds_hooks.security.replay_cache import ReplayCache
from cds_hooks.store.database import metadata

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "trusted-issuers"
KEYS = Path(__file__).parent / "keys"
ENDPOINT = "https://cds.hospital.example/ir/cds-services/immune-insulin-resistance"
SKEW = 60

EPIC = json.loads((EXAMPLES / "epic-style.example.json").read_text())[0]
EPIC_KEY = EPIC["jwks"]["keys"][0]
EPIC_JKU = (
    "https://fhir.hospital.example/interconnect-fhir-oauth/api/epic/2019/Security/Open/PublicKeys/530005/CDS"
)
ORACLE_JKU = "https://authorization.cerner.com/jwk"
ORACLE_KEY = json.loads((KEYS / "oracle-health-style.placeholder-jwks.json").read_text())["keys"][0]


class KeyServer(BaseAdapter):
    """Answers the Oracle Health key-set URL with the placeholder JWK Set: that server is not reachable
    from a test machine, so this stands in for it (the fetcher's own code runs unchanged)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        self.requests.append(request.url)
        response = requests.Response()
        response.status_code = 200 if request.url == ORACLE_JKU else 404
        response._content = (KEYS / "oracle-health-style.placeholder-jwks.json").read_bytes()
        response.raw = io.BytesIO(response._content)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def verifier(example: str) -> tuple[JwtVerifier, KeyServer]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    server = KeyServer()
    session = requests.Session()
    session.mount("https://authorization.cerner.com/", server)
    fetcher = JwksFetcher(ttl=600, timeout=5, session=session)
    issuers = load_trusted_issuers(EXAMPLES / example)
    checks = JwtVerifier(
        issuers,
        algorithms=parse_algorithms("ES384,RS384"),
        replay_cache=ReplayCache(engine),
        fetcher=fetcher,
        clock_skew=SKEW,
    )
    return checks, server


def epic_token(**claims: Any) -> str:
    """Epic's shape: RS384; header alg, jku, kid, typ; claims aud (as configured at the site), exp (15 min),
    iat, iss (the site's FHIR base), jti, nbf (5 min before iat), sub (the CDS client id)."""
    now = int(time.time())
    payload = {
        "aud": EPIC["audience"],
        "exp": now + 900,
        "iat": now,
        "iss": EPIC["iss"],
        "jti": str(uuid.uuid4()),
        "nbf": now - 300,
        "sub": EPIC["sub"],
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    header = {"jku": EPIC_JKU, "kid": EPIC_KEY["kid"], "typ": "JWT"}
    key = (KEYS / "epic-style.placeholder-private.pem").read_bytes()
    return "Bearer " + jwt.encode(payload, key, algorithm="RS384", headers=header)


def oracle_token(**claims: Any) -> str:
    """Oracle Health's shape: iss https://cds-hooks.cerner.com, header jku under
    authorization.cerner.com/jwk, tenant claim; ES384 here (RS384 works the same way)."""
    jku = claims.pop("jku", ORACLE_JKU)
    now = int(time.time())
    payload = {
        "iss": "https://cds-hooks.cerner.com",
        "aud": ENDPOINT,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "tenant": "ec2458f2-1e24-41c8-b71b-0e701af7583d",
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    header = {"jku": jku, "kid": ORACLE_KEY["kid"], "typ": "JWT"}
    key = (KEYS / "oracle-health-style.placeholder-private.pem").read_bytes()
    return "Bearer " + jwt.encode(payload, key, algorithm="ES384", headers=header)


def test_x4_epic_style_token_accepted_with_the_configured_audience_and_sub():
    checks, _ = verifier("epic-style.example.json")
    assert EPIC["audience"] != ENDPOINT  # configured by hand at the site: not the URL called
    verified = checks.verify(epic_token(), ENDPOINT)
    assert verified.iss == EPIC["iss"] and verified.kid == EPIC_KEY["kid"]


def test_x4_epic_style_token_for_another_audience_refused():
    checks, _ = verifier("epic-style.example.json")
    with pytest.raises(JwtRejected, match="InvalidAudienceError"):
        checks.verify(epic_token(aud="https://other.example/cds-services/x"), ENDPOINT)


@pytest.mark.parametrize("sub", ["another-client", None])
def test_x4_epic_style_token_with_another_or_no_sub_refused(sub):
    checks, _ = verifier("epic-style.example.json")
    with pytest.raises(JwtRejected, match="client id"):
        checks.verify(epic_token(sub=sub), ENDPOINT)  # None: the claim left out


@pytest.mark.parametrize(("ahead", "accepted"), [(SKEW - 5, True), (SKEW + 5, False)])
def test_x7_rs384_nbf_honoured_with_the_clock_skew(ahead, accepted):
    checks, _ = verifier("epic-style.example.json")
    token = epic_token(nbf=int(time.time()) + ahead)
    if accepted:
        checks.verify(token, ENDPOINT)
    else:
        with pytest.raises(JwtRejected, match="ImmatureSignatureError"):
            checks.verify(token, ENDPOINT)


@pytest.mark.parametrize(("ahead", "accepted"), [(SKEW - 5, True), (SKEW + 5, False)])
def test_x7_es384_nbf_honoured_with_the_clock_skew(ahead, accepted):
    checks, _ = verifier("oracle-health-style.example.json")
    token = oracle_token(nbf=int(time.time()) + ahead)
    if accepted:
        checks.verify(token, ENDPOINT)
    else:
        with pytest.raises(JwtRejected, match="ImmatureSignatureError"):
            checks.verify(token, ENDPOINT)


def test_x5_oracle_health_style_token_accepted_with_keys_from_the_allowlisted_jku():
    checks, server = verifier("oracle-health-style.example.json")
    verified = checks.verify(oracle_token(), ENDPOINT)
    assert verified.tenant == "ec2458f2-1e24-41c8-b71b-0e701af7583d"
    assert server.requests == [ORACLE_JKU]  # fetched once, from the allowlisted URL


def test_x5_oracle_health_style_token_with_a_jku_off_the_allowlist_refused():
    checks, server = verifier("oracle-health-style.example.json")
    with pytest.raises(JwtRejected, match="not on the issuer's allowlist"):
        checks.verify(oracle_token(jku="https://authorization.cerner.com/jwk/../evil"), ENDPOINT)
    assert server.requests == []  # never contacted


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("audience", 7, "'audience' must be"),
        ("audience", [""], "'audience' must be"),
        ("sub", "", "'sub' must be"),
    ],
)
def test_site_settings_are_checked_at_start_up(tmp_path, field, value, problem):
    entry = {**EPIC, field: value}
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(ConfigError, match=problem):
        load_trusted_issuers(path)
