"""The SMART app's launch and its refusals, against the app itself (the launcher cannot refuse).

A wrong ``state`` and a refused code are produced with the real launcher as the EHR's authorization
server: it answers a bad code with ``invalid_grant``.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.web.app_sessions import COOKIE, app_sessions
from cds_hooks.web.smart_launch import app_context, scopes
from tests.conftest import make_settings

from .smart_launcher import SmartLauncher, launch_parameter


def assert_clean_error(response, status: int, words: str) -> None:
    """An HTML error page with ``status``, a sentence containing ``words`` and no internals."""
    assert response.status_code == status
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert words in text
    for leak in ("Traceback", 'File "', "Exception", "werkzeug"):
        assert leak not in text


def start_launch(client: FlaskClient, launcher: SmartLauncher, patient: str = "ex24") -> dict[str, list[str]]:
    response = client.get(
        "/app/launch", query_string={"iss": launcher.iss, "launch": launch_parameter(patient)}
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{launcher.url}/v/r4/auth/authorize?")
    return parse_qs(urlsplit(location).query)


def test_no_session_redirects_to_launch(client: FlaskClient):
    response = client.get("/app/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/app/launch")
    assert_clean_error(client.get("/app/launch"), 400, "Open this app from your EHR")


def test_an_expired_session_redirects_to_launch(app: Flask, client: FlaskClient):
    with app.app_context():
        session_id = app_sessions().create(
            {
                "kind": "smart",
                "iss": "http://x",
                "patient": "p",
                "expires_at": time.time() - 1,
                "app_context": {},
            },
            60,
        )
    client.set_cookie(COOKIE, session_id)
    response = client.get("/app/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/app/launch")


def test_an_iss_outside_the_fhir_policy_is_refused(tmp_path: Path):
    # Default policy: loopback and private addresses are refused (SSRF protection, as for fhirServer).
    app = create_app(make_settings(tmp_path, fhir_allow_private=False), knowledge=default_knowledge())
    client = app.test_client()
    for path, query in (
        ("/app/launch", {"iss": "http://127.0.0.1:9/fhir", "launch": "x"}),
        ("/app/launch", {"iss": "http://169.254.169.254/latest", "launch": "x"}),
        ("/app/open", {"iss": "http://127.0.0.1:9/fhir", "patient": "p"}),
        ("/app/launch", {"iss": "file:///etc/passwd", "launch": "x"}),
    ):
        assert_clean_error(client.get(path, query_string=query), 400, "not allowed by this service")
    app.extensions["cds_hooks"].store.dispose()


def test_the_launch_asks_for_v2_scopes_with_pkce_s256(client: FlaskClient, smart_launcher: SmartLauncher):
    query = start_launch(client, smart_launcher)
    assert query["scope"] == [scopes(v2=True)]  # the launcher announces permission-v2
    assert "patient/Observation.rs" in query["scope"][0]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["aud"] == [smart_launcher.iss] and query["launch"] == [launch_parameter("ex24")]
    assert scopes(v2=False).split()[-1].endswith(".read")
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax" and not cookie.secure


def test_a_wrong_state_is_refused(client: FlaskClient, smart_launcher: SmartLauncher):
    start_launch(client, smart_launcher)
    response = client.get("/app/callback", query_string={"code": "anything", "state": "not-the-state"})
    assert_clean_error(response, 400, "state mismatch")


def test_a_callback_without_a_launch_is_refused(client: FlaskClient):
    response = client.get("/app/callback", query_string={"code": "c", "state": "s"})
    assert_clean_error(response, 400, "Launch the app again")


def test_a_refused_token_exchange_is_a_clear_error(client: FlaskClient, smart_launcher: SmartLauncher):
    query = start_launch(client, smart_launcher)
    response = client.get("/app/callback", query_string={"code": "forged-code", "state": query["state"][0]})
    assert_clean_error(response, 400, "refused the authorization code")
    # The pending launch is still the browser's: nothing was signed in.
    assert client.get("/app/").status_code == 302


def test_an_authorization_error_from_the_ehr_is_shown(client: FlaskClient, smart_launcher: SmartLauncher):
    query = start_launch(client, smart_launcher)
    response = client.get(
        "/app/callback", query_string={"error": "access_denied", "state": query["state"][0]}
    )
    assert_clean_error(response, 403, "did not authorize the app (access_denied)")


def test_the_session_cookie_is_secure_outside_development(tmp_path: Path, example_server):
    settings = make_settings(
        tmp_path, mode="production", fhir_allowlist=example_server.base_url, fhir_allow_http=True
    )
    app = create_app(settings, knowledge=default_knowledge())
    client = app.test_client()
    response = client.get("/app/open", query_string={"iss": example_server.base_url, "patient": "ex24"})
    assert response.status_code == 302
    header = response.headers["Set-Cookie"]
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    app.extensions["cds_hooks"].store.dispose()


def test_pages_carry_no_script_and_no_referrer(client: FlaskClient):
    response = client.get("/app/launch")
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'none' covers it
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"from": "2026-13-01"}, "must be a date"),
        ({"unit": "furlongs"}, "glucose unit must be one of"),
        ({"from": "2030-01-01", "to": "2020-01-01"}, "must run forwards"),
    ],
)
def test_bad_page_parameters_are_clear_errors(client: FlaskClient, example_server, query, words):
    opened = client.get("/app/open", query_string={"iss": example_server.base_url, "patient": "ex24"})
    assert opened.status_code == 302
    assert_clean_error(client.get("/app/", query_string=query), 400, words)


def test_app_context_keeps_only_the_rule_and_the_card():
    # As a card link sends it (a JSON string), as an EHR may return it in the token response (an object).
    assert app_context('{"rule":"type-b-insulin-resistance","card":"c1","x":"y"}') == {
        "rule": "type-b-insulin-resistance",
        "card": "c1",
    }
    assert app_context({"rule": "r", "card": 5}) == {"rule": "r"}
    assert app_context("not json") == {} and app_context(None) == {} and app_context("[1]") == {}


def test_a_completed_launch_keeps_the_token_on_the_server_for_its_lifetime(
    client: FlaskClient, smart_launcher: SmartLauncher, example_server
):
    query = start_launch(client, smart_launcher, "ex25")
    authorize = f"{smart_launcher.url}/v/r4/auth/authorize?" + urlencode(query, doseq=True)
    answer = requests.get(authorize, allow_redirects=False, timeout=30)
    assert answer.status_code == 302
    callback = urlsplit(answer.headers["Location"])
    assert callback.path == "/app/callback"
    response = client.get(f"/app/callback?{callback.query}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/app/")
    # A new session id (not the pending launch's), lasting as long as the launcher's token (3600 s).
    header = response.headers["Set-Cookie"]
    assert "Max-Age=3600" in header and "HttpOnly" in header and "SameSite=Lax" in header
    assert "access_token" not in header and "eyJ" not in header
    # The page is the launched patient's, as the FHIR server names them.
    name = example_server.get("Patient/ex25")["name"][0]
    shown = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
    page = client.get("/app/")
    assert page.status_code == 200 and f"<h1>{shown}</h1>" in page.get_data(as_text=True)


def test_an_unreachable_fhir_server_is_a_clear_error(app: Flask, client: FlaskClient):
    with app.app_context():
        session_id = app_sessions().create(
            {
                "kind": "open",
                "iss": "http://127.0.0.1:9/fhir",  # nothing listens on the discard port
                "access_token": None,
                "patient": "p",
                "expires_at": time.time() + 60,
                "app_context": {},
            },
            60,
        )
    client.set_cookie(COOKIE, session_id)
    assert_clean_error(client.get("/app/"), 502, "could not be read from the FHIR server")
