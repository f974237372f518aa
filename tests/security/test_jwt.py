"""JWT verification (X3–X7, E2): every check has its own test with an otherwise valid token."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import jwt
import pytest

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.process.config import Settings
from cds_hooks.security.jwt_verification import EXTENSION
from tests.builders import porcine_request
from tests.security.jwt_helpers import (
    DISCOVERY_AUD,
    DISCOVERY_PATH,
    DROP,
    FEEDBACK_AUD,
    FEEDBACK_PATH,
    ISS,
    SANDBOX_ISS,
    SANDBOX_JKU,
    SANDBOX_KID,
    SERVICE_AUD,
    SERVICE_PATH,
    KeyPair,
    b64,
    bearer,
    claims,
    hs256_with_public_key,
    jwks,
    raw_token,
    sign,
    token,
)

EXPECTED_401 = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "login",
            "details": {"text": "invalid or missing authorization"},
            "diagnostics": "invalid or missing authorization",
        }
    ],
}


def feedback_body() -> dict[str, Any]:
    return {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-27T10:05:31Z",
                "overrideReason": {"userComment": "seen"},
            }
        ]
    }


def assert_refused(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json(force=True) == EXPECTED_401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.mimetype == "application/fhir+json"


def discover(client, tok: str | None):  # type: ignore[no-untyped-def]
    return client.get(DISCOVERY_PATH, headers=bearer(tok) if tok is not None else {})


# --- accepted -----------------------------------------------------------------------------------


def test_x4_valid_token_accepted_on_discovery(client, es384):
    r = discover(client, token(es384, DISCOVERY_AUD))
    assert r.status_code == 200
    assert r.get_json()["services"]


def test_x4_valid_token_accepted_on_service_call(client, es384):
    r = client.post(SERVICE_PATH, json=porcine_request(), headers=bearer(token(es384, SERVICE_AUD)))
    assert r.status_code == 200
    assert r.get_json()["cards"]


def test_fb3_valid_token_accepted_on_feedback(client, es384):
    r = client.post(FEEDBACK_PATH, json=feedback_body(), headers=bearer(token(es384, FEEDBACK_AUD)))
    assert r.status_code == 200
    assert r.get_json()["stored"] == 1


def test_x5_rs384_token_accepted(client, rs384):
    assert discover(client, token(rs384, DISCOVERY_AUD)).status_code == 200


def test_x4_aud_as_array_containing_the_url_accepted(client, es384):
    tok = token(es384, ["https://other.example.org/cds-services", DISCOVERY_AUD])
    assert discover(client, tok).status_code == 200


def test_x4_aud_as_array_without_the_url_refused(client, es384):
    assert_refused(discover(client, token(es384, ["https://other.example.org/cds-services"])))


# --- the CDS Hooks Sandbox ----------------------------------------------------------------------


def sandbox_token(key: KeyPair, aud: str) -> str:
    """Exactly what the Sandbox sends (header member order included), signed with ``key``."""
    header = {"alg": "ES384", "typ": "JWT", "kid": SANDBOX_KID, "jku": SANDBOX_JKU}
    now = int(time.time())
    payload = {"iss": SANDBOX_ISS, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    algorithm = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA384)
    return f"{signing_input}.{b64(algorithm.sign(signing_input.encode(), key.private))}"


class _NoNetwork:
    def get(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the jku of a token must not be fetched for an issuer with configured keys")


def test_x5_sandbox_header_and_claims_accepted_when_issuer_and_key_configured(make_app, es384):
    app = make_app([{"iss": SANDBOX_ISS, "jwks": {"keys": [es384.public_jwk(kid=SANDBOX_KID)]}}])
    app.extensions[EXTENSION].fetcher.session = _NoNetwork()
    c = app.test_client()
    assert c.get(DISCOVERY_PATH, headers=bearer(sandbox_token(es384, DISCOVERY_AUD))).status_code == 200
    r = c.post(SERVICE_PATH, json=porcine_request(), headers=bearer(sandbox_token(es384, SERVICE_AUD)))
    assert r.status_code == 200
    r = c.post(FEEDBACK_PATH, json=feedback_body(), headers=bearer(sandbox_token(es384, FEEDBACK_AUD)))
    assert r.status_code == 200
    assert app.extensions[EXTENSION].fetcher.fetch_count == 0


def test_x6_sandbox_token_refused_when_issuer_not_configured(client, es384):
    assert_refused(client.get(DISCOVERY_PATH, headers=bearer(sandbox_token(es384, DISCOVERY_AUD))))


def test_x5_sandbox_token_signed_by_another_key_refused_with_the_sandbox_file(make_app, es384, request):
    """With the shipped example file the Sandbox's real public key is trusted, not our test key."""
    example = request.config.rootpath / "examples" / "trusted-issuers" / "sandbox.dev.json"
    c = make_app(example).test_client()
    assert_refused(c.get(DISCOVERY_PATH, headers=bearer(sandbox_token(es384, DISCOVERY_AUD))))


# --- header checks (X3, X5) ---------------------------------------------------------------------


def test_e2_missing_authorization_header_refused(client):
    assert_refused(discover(client, None))


def test_e2_non_bearer_scheme_refused(client, es384):
    r = client.get(DISCOVERY_PATH, headers={"Authorization": f"Basic {token(es384, DISCOVERY_AUD)}"})
    assert_refused(r)


def test_e2_garbage_token_refused(client):
    assert_refused(discover(client, "not-a-jwt"))


def test_x3_wrong_typ_refused(client, es384):
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, header={"typ": "at+jwt"})))


def test_x3_missing_typ_refused(client, es384):
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, header={"typ": DROP})))


def test_x3_missing_kid_refused(make_app, es384):
    # The only key of the issuer: a verifier that fell back to "any key" would accept this token.
    c = make_app([{"iss": ISS, "jwks": jwks(es384)}]).test_client()
    assert discover(c, token(es384, DISCOVERY_AUD)).status_code == 200
    assert_refused(discover(c, token(es384, DISCOVERY_AUD, header={"kid": DROP})))


def test_x3_unknown_kid_refused(client, es384):
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, header={"kid": "no-such-key"})))


def test_x5_alg_none_refused(make_app, es384):
    c = make_app([{"iss": ISS, "jwks": jwks(es384)}], jwt_algorithms="ES384,none").test_client()
    tok = raw_token({"alg": "none", "typ": "JWT", "kid": es384.kid}, claims(DISCOVERY_AUD))
    assert_refused(discover(c, tok))


def test_x5_hs256_signed_with_the_public_key_refused_even_when_configured(make_app, es384):
    c = make_app([{"iss": ISS, "jwks": jwks(es384)}], jwt_algorithms="HS256,ES384").test_client()
    assert_refused(discover(c, hs256_with_public_key(es384, claims(DISCOVERY_AUD))))


def test_x5_alg_not_on_allowlist_refused(make_app, es256):
    """ES256 with a valid P-256 key: accepted when allowed, refused when only ES384 is."""
    issuers = [{"iss": ISS, "jwks": jwks(es256)}]
    allowed = make_app(issuers, jwt_algorithms="ES256,ES384").test_client()
    assert discover(allowed, token(es256, DISCOVERY_AUD)).status_code == 200
    only_es384 = make_app(issuers, jwt_algorithms="ES384").test_client()
    assert_refused(discover(only_es384, token(es256, DISCOVERY_AUD)))


def test_x5_header_alg_must_match_the_key(client, rs384):
    """An RSA key may not be used with an algorithm it is not published for (RS384 vs PS384 is fine,
    RS384 key with ES384 header is not)."""
    tok = sign(rs384, claims(DISCOVERY_AUD), alg="RS384", kid=rs384.kid)
    assert discover(client, tok).status_code == 200
    forged = raw_token({"alg": "ES384", "typ": "JWT", "kid": rs384.kid}, claims(DISCOVERY_AUD), b"x" * 96)
    assert_refused(discover(client, forged))


def test_x5_bad_signature_refused(client, attacker):
    # Same kid as the trusted key, different private key.
    assert_refused(discover(client, token(attacker, DISCOVERY_AUD)))


def test_x5_tampered_payload_refused(client, es384):
    header, _, signature = token(es384, DISCOVERY_AUD).split(".")
    forged = f"{header}.{b64(json.dumps(claims(DISCOVERY_AUD)).encode())}.{signature}"
    assert_refused(discover(client, forged))


# --- claims (X4, X7) ----------------------------------------------------------------------------


def test_x7_issuer_not_on_allowlist_refused(client, es384):
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, iss="https://evil.example.com")))


def test_x7_aud_of_another_endpoint_refused(client, es384):
    r = client.post(SERVICE_PATH, json=porcine_request(), headers=bearer(token(es384, DISCOVERY_AUD)))
    assert_refused(r)


def test_x7_aud_https_when_called_over_http_refused(client, es384):
    assert_refused(discover(client, token(es384, "https://localhost/cds-services")))


def test_x7_aud_ignores_the_query_string(client, es384):
    r = client.get(DISCOVERY_PATH + "?x=1", headers=bearer(token(es384, DISCOVERY_AUD)))
    assert r.status_code == 200


def test_x7_aud_behind_a_proxy_uses_the_public_base_url(make_app, trusted, es384):
    c = make_app(trusted, public_base_url="https://cds.example.org/ir/").test_client()
    assert_refused(discover(c, token(es384, DISCOVERY_AUD)))  # the internal URL is not the one called
    assert discover(c, token(es384, "https://cds.example.org/ir/cds-services")).status_code == 200
    r = c.post(
        SERVICE_PATH,
        json=porcine_request(),
        headers=bearer(token(es384, "https://cds.example.org/ir" + SERVICE_PATH)),
    )
    assert r.status_code == 200


def test_x7_expired_beyond_skew_refused(client, es384):
    now = int(time.time())
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, iat=now - 400, exp=now - 90)))


def test_x7_expired_within_skew_accepted(client, es384):
    now = int(time.time())
    assert discover(client, token(es384, DISCOVERY_AUD, iat=now - 330, exp=now - 30)).status_code == 200


def test_x7_clock_skew_is_configurable(make_app, trusted, es384):
    c = make_app(trusted, jwt_clock_skew=0).test_client()
    now = int(time.time())
    assert_refused(discover(c, token(es384, DISCOVERY_AUD, iat=now - 330, exp=now - 30)))


def test_x7_iat_in_the_future_beyond_skew_refused(client, es384):
    now = int(time.time())
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, iat=now + 120, exp=now + 420)))


def test_x7_iat_in_the_future_within_skew_accepted(client, es384):
    now = int(time.time())
    assert discover(client, token(es384, DISCOVERY_AUD, iat=now + 30, exp=now + 330)).status_code == 200


def test_x7_nbf_in_the_future_refused(client, es384):
    now = int(time.time())
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, nbf=now + 200)))


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "jti"])
def test_x4_required_claim_missing_refused(client, es384, claim):
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, **{claim: DROP})))


def test_x4_missing_jti_refused(client, es384):
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, jti=DROP)))


def test_x4_jti_must_be_a_short_string(client, es384):
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, jti="x" * 300)))


def test_x7_replayed_jti_refused(client, es384):
    tok = token(es384, DISCOVERY_AUD)
    assert discover(client, tok).status_code == 200
    assert_refused(discover(client, tok))


def test_x7_same_jti_in_a_new_token_refused(client, es384):
    jti = str(uuid.uuid4())
    assert discover(client, token(es384, DISCOVERY_AUD, jti=jti)).status_code == 200
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, jti=jti, iat=int(time.time()) - 1)))


def test_x7_replay_across_two_instances_sharing_one_database_refused(make_app, trusted, es384):
    """Two apps, two engines, one SQLite file: what one accepted, the other refuses."""
    first = make_app(trusted).test_client()
    second = make_app(trusted).test_client()
    assert (
        first.application.extensions["cds_hooks"].store
        is not second.application.extensions["cds_hooks"].store
    )
    tok = token(es384, SERVICE_AUD)
    assert first.post(SERVICE_PATH, json=porcine_request(), headers=bearer(tok)).status_code == 200
    assert_refused(second.post(SERVICE_PATH, json=porcine_request(), headers=bearer(tok)))
    # And the other way round.
    tok = token(es384, DISCOVERY_AUD)
    assert discover(second, tok).status_code == 200
    assert_refused(discover(first, tok))


def test_x7_concurrent_replays_only_one_accepted(make_app, trusted, es384):
    from concurrent.futures import ThreadPoolExecutor

    apps = [make_app(trusted), make_app(trusted)]
    tok = token(es384, DISCOVERY_AUD)

    def call(i: int) -> int:
        return apps[i % 2].test_client().get(DISCOVERY_PATH, headers=bearer(tok)).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, range(16)))
    assert sorted(statuses) == [200] + [401] * 15


def test_x7_tenant_allowlist(make_app, trusted, es384):
    c = make_app(trusted, jwt_tenants="org-1, org-2").test_client()
    assert discover(c, token(es384, DISCOVERY_AUD, tenant="org-2")).status_code == 200
    assert_refused(discover(c, token(es384, DISCOVERY_AUD, tenant="org-3")))
    assert_refused(discover(c, token(es384, DISCOVERY_AUD)))
    assert_refused(discover(c, token(es384, DISCOVERY_AUD, tenant=["org-1"])))


def test_x7_tenant_not_checked_when_no_allowlist(client, es384):
    assert discover(client, token(es384, DISCOVERY_AUD, tenant="anything")).status_code == 200


def test_oversized_token_refused(client, es384):
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, padding="x" * 9000)))


# --- the answer and the log (E2) ----------------------------------------------------------------


def test_e2_every_refusal_is_the_same_generic_answer(make_app, trusted, es384, attacker):
    c = make_app(trusted, jwt_tenants="org-1").test_client()
    now = int(time.time())
    replayed = token(es384, DISCOVERY_AUD, tenant="org-1")
    assert discover(c, replayed).status_code == 200
    bad = [
        None,
        "garbage",
        token(es384, DISCOVERY_AUD, header={"typ": "JOSE"}, tenant="org-1"),
        token(es384, DISCOVERY_AUD, header={"kid": "nope"}, tenant="org-1"),
        token(attacker, DISCOVERY_AUD, tenant="org-1"),
        token(es384, DISCOVERY_AUD, iss="https://evil.example.com", tenant="org-1"),
        token(es384, SERVICE_AUD, tenant="org-1"),
        token(es384, DISCOVERY_AUD, iat=now - 900, exp=now - 600, tenant="org-1"),
        token(es384, DISCOVERY_AUD, jti=DROP, tenant="org-1"),
        token(es384, DISCOVERY_AUD, tenant="org-9"),
        replayed,
        hs256_with_public_key(es384, claims(DISCOVERY_AUD, tenant="org-1")),
    ]
    answers = set()
    for tok in bad:
        r = discover(c, tok)
        assert_refused(r)
        answers.add((r.get_data(as_text=True), r.headers["WWW-Authenticate"], r.headers["Content-Type"]))
    assert len(answers) == 1


def test_e2_refusal_carries_cors_headers_so_browsers_can_read_it(client):
    r = client.get(DISCOVERY_PATH, headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert_refused(r)
    assert r.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")


def test_x7_log_has_the_reason_iss_kid_jti_but_never_the_token(client, es384, caplog):
    caplog.set_level(logging.INFO, logger="cds_hooks")
    now = int(time.time())
    jti = str(uuid.uuid4())
    tok = token(es384, DISCOVERY_AUD, iat=now - 900, exp=now - 600, jti=jti)
    assert_refused(discover(client, tok))
    refusals = [r for r in caplog.records if r.name == "cds_hooks.security" and r.levelno == logging.WARNING]
    assert len(refusals) == 1
    message = refusals[0].getMessage()
    assert "ExpiredSignatureError" in message
    assert f"iss={ISS}" in message and f"kid={es384.kid}" in message and f"jti={jti}" in message
    for part in tok.split("."):
        assert part not in caplog.text
    assert "Bearer" not in caplog.text


def test_x7_log_escapes_hostile_claims(client, es384, caplog):
    caplog.set_level(logging.WARNING, logger="cds_hooks.security")
    assert_refused(discover(client, token(es384, DISCOVERY_AUD, iss="https://evil\nFAKE LOG LINE")))
    assert "\nFAKE LOG LINE" not in caplog.text
    assert "\\nFAKE LOG LINE" in caplog.text


# --- what needs no token ------------------------------------------------------------------------


def test_x8_preflight_needs_no_token(client):
    for path in (DISCOVERY_PATH, SERVICE_PATH, FEEDBACK_PATH):
        r = client.options(
            path,
            headers={
                "Origin": "https://sandbox.cds-hooks.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Content-Type",
            },
        )
        assert r.status_code == 200, path
        assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()


def test_health_and_sources_need_no_token(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/sources/immune-insulin-resistance").status_code == 200


def test_unknown_service_is_refused_before_it_is_looked_up(client):
    """Without a token, nobody learns which service ids exist."""
    assert_refused(client.post("/cds-services/no-such-service", json=porcine_request()))


def test_mode_off_accepts_calls_without_token_and_warns_at_start_up(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cds_hooks")
    app = create_app(Settings.from_env({}, data_dir=tmp_path / "data"), knowledge=default_knowledge())
    try:
        assert any(
            r.levelno == logging.WARNING and "JWT verification is OFF" in r.getMessage()
            for r in caplog.records
        )
        c = app.test_client()
        assert c.get(DISCOVERY_PATH).status_code == 200
        assert c.post(SERVICE_PATH, json=porcine_request()).status_code == 200
        assert c.post(FEEDBACK_PATH, json=feedback_body()).status_code == 200
        assert EXTENSION not in app.extensions
    finally:
        app.extensions["cds_hooks"].store.dispose()
