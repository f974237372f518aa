"""SMART App Launch 2.0, EHR launch, for a public client: discovery, scopes, PKCE S256, token exchange.

authlib builds the authorization URL (with the PKCE challenge) and exchanges the code. Every URL the
service itself calls — the FHIR base (``iss``), its ``.well-known/smart-configuration`` and the token
endpoint — is checked against the service's FHIR target policy first: ``iss`` comes from the browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from cds_hooks.fhir.client import FhirClient, FhirUnavailable
from cds_hooks.fhir.target_policy import FhirPolicy, FhirServerNotAllowed

# What the timeline reads. v2 scopes (``.rs``: read and search) with the v1 ``.read`` form for servers
# that do not announce ``permission-v2``.
RESOURCES = ("Patient", "Observation", "MedicationStatement", "MedicationRequest", "Medication", "Condition")
BASE_SCOPES = ("launch", "openid", "fhirUser")


class LaunchError(Exception):
    """The launch cannot go on; ``message`` is safe to show (no token, no stack)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SmartConfiguration:
    authorization_endpoint: str
    token_endpoint: str
    v2: bool


def scopes(v2: bool) -> str:
    suffix = "rs" if v2 else "read"
    return " ".join((*BASE_SCOPES, *(f"patient/{r}.{suffix}" for r in RESOURCES)))


def check_target(policy: FhirPolicy, url: str, what: str) -> None:
    try:
        policy.check(url)
    except FhirServerNotAllowed as exc:
        raise LaunchError(400, f"The {what} is not allowed by this service's FHIR policy: {exc}.") from exc


def discover(client: FhirClient, policy: FhirPolicy) -> SmartConfiguration:
    """``<iss>/.well-known/smart-configuration``: endpoints, PKCE S256, v2 permissions."""
    try:
        config = client.get_json(".well-known/smart-configuration")
    except FhirUnavailable as exc:
        raise LaunchError(
            400, f"The EHR's SMART configuration could not be read ({exc.reason}); is iss a SMART server?"
        ) from exc
    if not isinstance(config, dict):
        raise LaunchError(400, "The EHR's SMART configuration is not a JSON object.")
    authorize, token = config.get("authorization_endpoint"), config.get("token_endpoint")
    if not (isinstance(authorize, str) and urlsplit(authorize).scheme in ("http", "https")):
        raise LaunchError(400, "The EHR's SMART configuration has no usable authorization_endpoint.")
    if not isinstance(token, str):
        raise LaunchError(400, "The EHR's SMART configuration has no token_endpoint.")
    check_target(policy, token, "EHR's token endpoint")
    methods = config.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise LaunchError(400, "The EHR's authorization server does not support PKCE S256.")
    capabilities = config.get("capabilities")
    v2 = isinstance(capabilities, list) and "permission-v2" in capabilities
    return SmartConfiguration(authorize, token, v2)


def oauth_session(client_id: str, redirect_uri: str, scope: str | None = None) -> OAuth2Session:
    return OAuth2Session(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",  # a public client: PKCE instead of a secret
    )


def authorization_url(
    config: SmartConfiguration, *, client_id: str, redirect_uri: str, iss: str, launch: str
) -> tuple[str, str, str]:
    """The URL to send the browser to, the ``state`` and the PKCE verifier to keep server-side."""
    verifier = generate_token(64)
    session = oauth_session(client_id, redirect_uri, scopes(config.v2))
    url, state = session.create_authorization_url(
        config.authorization_endpoint, code_verifier=verifier, launch=launch, aud=iss
    )
    return url, state, verifier


def exchange_code(
    *, token_endpoint: str, client_id: str, redirect_uri: str, code: str, verifier: str, timeout: float
) -> dict[str, Any]:
    """The token response; ``LaunchError`` 400 when the server refuses the code, 502 when unreachable."""
    session = oauth_session(client_id, redirect_uri)
    try:
        token = session.fetch_token(
            token_endpoint,
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
            timeout=timeout,
            allow_redirects=False,
        )
    except OAuthError as exc:
        raise LaunchError(
            400, f"The EHR's authorization server refused the authorization code ({exc.error})."
        ) from None
    except requests.RequestException:
        raise LaunchError(502, "The EHR's authorization server could not be reached.") from None
    except ValueError:
        raise LaunchError(400, "The EHR's authorization server did not answer with a token.") from None
    finally:
        session.close()
    if not isinstance(token.get("access_token"), str) or not token["access_token"]:
        raise LaunchError(400, "The EHR's token response has no access token.")
    if not isinstance(token.get("patient"), str) or not token["patient"]:
        raise LaunchError(400, "The EHR's token response names no patient (launch/patient context).")
    return dict(token)


def app_context(value: Any) -> dict[str, str]:
    """``appContext`` of a card link (a JSON string ``{"rule": …, "card": …}``) → its string members."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    if not isinstance(value, dict):
        return {}
    return {k: v[:100] for k, v in value.items() if k in ("rule", "card") and isinstance(v, str)}
