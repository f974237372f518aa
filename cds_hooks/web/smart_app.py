"""The SMART on FHIR app at ``/app/``: EHR launch, open-server mode, and the patient timeline page.

Flow: ``/app/launch?iss&launch`` (discovery, PKCE, redirect to the EHR) → ``/app/callback?code&state``
(token exchange, server-side session) → ``/app/`` (the page). ``/app/open?iss&patient`` reads a FHIR
server without authorization (the demo, the Sandbox's open servers). The browser only ever holds a random
session id; tokens are never put in a page, a URL or a log line. Errors are HTML pages with a 4xx/5xx
status and a plain sentence, never a stack trace.
"""

from __future__ import annotations

import hmac
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, make_response, redirect, render_template, request, url_for

from cds_hooks.api.runtime import runtime
from cds_hooks.fhir.client import FhirUnavailable
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.fhir.target_policy import FhirPolicy
from cds_hooks.hooks.protocol import CdsError, CdsRequest, FhirAuthorization
from cds_hooks.hooks.registry import PATIENT_VIEW_ID
from cds_hooks.web.app_sessions import (
    COOKIE,
    DEFAULT_TOKEN_SECONDS,
    PENDING_SECONDS,
    app_sessions,
    start_session,
)
from cds_hooks.web.html_pages import error_page, secure_headers
from cds_hooks.web.smart_launch import (
    LaunchError,
    app_context,
    authorization_url,
    check_target,
    discover,
    exchange_code,
)
from cds_hooks.web.timeline.page import GLUCOSE_UNITS, build_page

log = logging.getLogger("cds_hooks.app")

bp = Blueprint("smart_app", __name__, url_prefix="/app", template_folder="templates", static_folder="static")

DEFAULT_YEARS = 2
MAX_YEARS = 20


def _policy() -> FhirPolicy:
    policy = runtime().pipeline.policy
    assert policy is not None  # the HTTP service always has one
    return policy


def _base_url() -> str:
    return (runtime().settings.public_base_url or request.host_url).rstrip("/")


def redirect_uri() -> str:
    return _base_url() + url_for("smart_app.callback")


@bp.errorhandler(LaunchError)
def _launch_error(exc: LaunchError) -> Response:
    return error_page(exc.status, exc.message)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    from werkzeug.exceptions import HTTPException

    if isinstance(exc, HTTPException):
        return error_page(exc.code or 500, exc.description or exc.name)
    log.exception("unhandled error on %s %s", request.method, request.path)  # the server log only
    return error_page(500, "The app could not show this page because of an internal error.")


bp.after_request(secure_headers)


@bp.get("/launch")
def launch() -> Response:
    """EHR launch: ``iss`` and ``launch`` from the EHR; ``appContext`` may come along from a card link."""
    iss, launch_id = request.args.get("iss", ""), request.args.get("launch", "")
    if not iss or not launch_id:
        return error_page(
            400,
            "Open this app from your EHR (a SMART EHR launch brings the iss and launch parameters), "
            "or from a CDS card's link.",
        )
    check_target(_policy(), iss, "FHIR server (iss)")
    client = runtime().pipeline.client(iss)
    config = discover(client, _policy())
    settings = runtime().settings
    url, state, verifier = authorization_url(
        config, client_id=settings.app_client_id, redirect_uri=redirect_uri(), iss=iss, launch=launch_id
    )
    pending = {
        "kind": "pending",
        "iss": iss,
        "state": state,
        "verifier": verifier,
        "token_endpoint": config.token_endpoint,
        "app_context": app_context(request.args.get("appContext")),
    }
    return start_session(pending, PENDING_SECONDS, url)


@bp.get("/callback")
def callback() -> Response:
    sessions = app_sessions()
    pending = sessions.get(request.cookies.get(COOKIE))
    if pending is None or pending.get("kind") != "pending":
        return error_page(
            400,
            "This sign-in is unknown or has expired (or the browser blocked the app's cookie). "
            "Launch the app again from the EHR.",
        )
    state = request.args.get("state", "")
    if not hmac.compare_digest(state.encode(), str(pending["state"]).encode()):
        return error_page(400, "The sign-in answer does not belong to this launch (state mismatch).")
    if request.args.get("error"):
        sessions.delete(request.cookies.get(COOKIE))
        return error_page(403, f"The EHR did not authorize the app ({request.args.get('error', '')[:100]}).")
    code = request.args.get("code", "")
    if not code:
        return error_page(400, "The sign-in answer carries no authorization code.")
    settings = runtime().settings
    token = exchange_code(
        token_endpoint=pending["token_endpoint"],
        client_id=settings.app_client_id,
        redirect_uri=redirect_uri(),
        code=code,
        verifier=pending["verifier"],
        timeout=settings.fhir_read_timeout,
    )
    expires_in = token.get("expires_in")
    seconds = (
        int(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_TOKEN_SECONDS
    )
    context = app_context(token.get("appContext")) or pending["app_context"]
    session = {
        "kind": "smart",
        "iss": pending["iss"],
        "access_token": token["access_token"],
        "scope": str(token.get("scope", "")),
        "patient": token["patient"],
        "expires_at": time.time() + seconds,
        "app_context": context,
    }
    log.info("SMART launch completed (scope=%s)", session["scope"])
    return start_session(session, seconds, url_for("smart_app.timeline", **_rule_arg(context)))


def _rule_arg(context: dict[str, str]) -> dict[str, str]:
    return {"rule": context["rule"]} if context.get("rule") else {}


@bp.get("/open")
def open_server() -> Response:
    """Open-server mode: read ``iss`` directly, without authorization (allowed by the FHIR policy only)."""
    iss, patient = request.args.get("iss", ""), request.args.get("patient", "")
    if not iss or not patient:
        return error_page(400, "Open-server mode needs the FHIR server (iss) and the patient id (patient).")
    check_target(_policy(), iss, "FHIR server (iss)")
    try:
        found = runtime().pipeline.client(iss).read(f"Patient/{patient}")
    except FhirUnavailable as exc:
        status = 403 if exc.status in (401, 403) else 502
        hint = " This server needs authorization: launch the app from the EHR." if status == 403 else ""
        return error_page(status, f"The FHIR server could not be read ({exc.reason}).{hint}")
    if found is None:
        return error_page(404, "The FHIR server has no such patient.")
    context = app_context({"rule": request.args.get("rule", "")}) if request.args.get("rule") else {}
    session = {
        "kind": "open",
        "iss": iss,
        "access_token": None,
        "patient": patient,
        "expires_at": time.time() + DEFAULT_TOKEN_SECONDS,
        "app_context": context,
    }
    return start_session(session, DEFAULT_TOKEN_SECONDS, url_for("smart_app.timeline", **_rule_arg(context)))


class BadParameter(ValueError):
    """A page parameter the app cannot use; the message is safe to show."""


def _date(name: str) -> datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise BadParameter(f"'{name}' must be a date like 2026-01-31.") from None


def _resources(session: dict[str, Any]) -> ResourceIndex:
    """The patient's record, fetched with the patient-view service's own queries."""
    pipeline = runtime().pipeline
    token = session.get("access_token")
    req = CdsRequest(
        hook="patient-view",
        hook_instance="timeline",
        context={"patientId": session["patient"]},
        fhir_server=session["iss"],
        fhir_authorization=FhirAuthorization(access_token=token, scope=session.get("scope", ""))
        if token
        else None,
    )
    try:
        return pipeline.gather(req, pipeline.services[PATIENT_VIEW_ID].prefetch)
    except CdsError as exc:
        if exc.status == 413:
            raise LaunchError(413, exc.message) from None
        raise


@bp.get("/")
def timeline() -> Response:
    session = app_sessions().get(request.cookies.get(COOKIE))
    if session is None or session.get("kind") not in ("smart", "open") or session["expires_at"] < time.time():
        return redirect(url_for("smart_app.launch"), code=302)
    now = datetime.now(UTC)
    try:
        end = _date("to") or now
        start = _date("from") or end - timedelta(days=365 * DEFAULT_YEARS)
    except BadParameter as exc:
        return error_page(400, str(exc))
    if start >= end or end - start > timedelta(days=365 * MAX_YEARS):
        return error_page(400, f"The date range must run forwards and span at most {MAX_YEARS} years.")
    end = end + timedelta(days=1) if request.args.get("to") else end  # "to" is inclusive
    unit = request.args.get("unit", "mg/dL")
    if unit not in GLUCOSE_UNITS:
        return error_page(400, f"The glucose unit must be one of {', '.join(GLUCOSE_UNITS)}.")
    rule = request.args.get("rule") or session["app_context"].get("rule")
    try:
        index = _resources(session)
    except FhirUnavailable as exc:
        return error_page(502, f"The patient's record could not be read from the FHIR server ({exc.reason}).")
    except CdsError as exc:
        return error_page(502, f"The patient's record could not be read from the FHIR server ({exc.message})")
    page = build_page(
        index,
        runtime().knowledge,
        patient_id=session["patient"],
        now=now,
        start=start,
        end=end,
        glucose_unit=unit,
        rule=rule,
    )
    links = {u: url_for("smart_app.timeline", **_query(request.args, unit=u)) for u in GLUCOSE_UNITS}
    return make_response(
        render_template(
            "app/timeline.html",
            page=page,
            unit_links=links,
            card=session["app_context"].get("card"),
            from_value=start.date().isoformat(),
            to_value=(end - timedelta(days=1) if request.args.get("to") else end).date().isoformat(),
            open_mode=session["kind"] == "open",
        )
    )


def _query(args: Any, **changes: str) -> dict[str, str]:
    merged = {k: v for k, v in args.items() if k in ("from", "to", "unit", "rule")}
    merged.update(changes)
    return merged


def launch_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/app/launch"


def open_url(base_url: str, iss: str, patient: str, rule: str | None = None) -> str:
    query = {"iss": iss, "patient": patient, **({"rule": rule} if rule else {})}
    return f"{base_url.rstrip('/')}/app/open?{urlencode(query)}"
