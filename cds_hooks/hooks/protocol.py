"""CDS Hooks 2.0.1 wire protocol: request validation, OperationOutcome errors, feedback validation.

Nothing clinical lives here. Every rejection is a ``CdsError`` carrying the HTTP status and a message a
person can act on; the app turns it into a FHIR R4 ``OperationOutcome`` body (checklist E3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# FHIR R4 issue-type codes used in OperationOutcome (http://hl7.org/fhir/issue-type).
ISSUE_CODE_BY_STATUS = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    412: "processing",
    413: "too-costly",
    415: "not-supported",
    500: "exception",
}


class CdsError(Exception):
    """A request the service refuses, with the HTTP status to answer and a human-readable reason."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, expression: list[str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or ISSUE_CODE_BY_STATUS.get(status, "processing")
        self.expression = expression or []


def operation_outcome(
    message: str, *, code: str = "processing", severity: str = "error", expression: list[str] | None = None
) -> dict[str, Any]:
    """A minimal FHIR R4 OperationOutcome with one issue. The message is both ``details.text`` (what CDS
    Hooks 3.0's "Returning OperationOutcome" shows a person) and ``diagnostics`` (what 2.0.1 clients and the
    3.0 example read)."""
    issue: dict[str, Any] = {
        "severity": severity,
        "code": code,
        "details": {"text": message},
        "diagnostics": message,
    }
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@dataclass(frozen=True)
class FhirAuthorization:
    """The OAuth token the EHR lends us (R4). Transient: never logged, never stored (R5)."""

    access_token: str
    token_type: str = "Bearer"
    scope: str = ""
    subject: str = ""
    patient: str | None = None

    def __repr__(self) -> str:  # keep the token out of any accidental log line
        return f"FhirAuthorization(token_type={self.token_type!r}, scope={self.scope!r}, token=***)"


@dataclass(frozen=True)
class CdsRequest:
    """A validated CDS Hooks service request."""

    hook: str
    hook_instance: str
    context: dict[str, Any]
    prefetch: dict[str, Any] = field(default_factory=dict)
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None

    @property
    def patient_id(self) -> str:
        return str(self.context["patientId"])

    @property
    def user_id(self) -> str | None:
        value = self.context.get("userId")
        return value if isinstance(value, str) else None


_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def parse_service_request(body: Any, expected_hook: str) -> CdsRequest:
    """Validate a decoded JSON body against CDS Hooks 2.0.1 (R1–R4, C1) for a service of ``expected_hook``."""
    if not isinstance(body, dict):
        raise CdsError(400, "The request body must be a JSON object with hook, hookInstance and context.")
    missing = [name for name in ("hook", "hookInstance", "context") if name not in body]
    if missing:
        raise CdsError(
            400, f"The request is missing the required member(s): {', '.join(missing)}.", expression=missing
        )
    hook, hook_instance, context = body["hook"], body["hookInstance"], body["context"]
    if not isinstance(hook, str) or not hook:
        raise CdsError(400, "'hook' must be a non-empty string.", expression=["hook"])
    if hook != expected_hook:
        raise CdsError(
            400,
            f"This service answers the '{expected_hook}' hook, but the request is for '{hook}'.",
            expression=["hook"],
        )
    if not isinstance(hook_instance, str) or not hook_instance.strip():
        raise CdsError(
            400, "'hookInstance' must be a non-empty string (a UUID).", expression=["hookInstance"]
        )
    if not _UUID.match(hook_instance):
        # R1: "a universally unique identifier (UUID)"; 3.0 types it uuid (CDSHooksRequest).
        raise CdsError(
            400,
            "'hookInstance' must be a UUID (36 characters, e.g. d1577c69-dfbe-44ad-ba6d-3e05e953b2ea).",
            expression=["hookInstance"],
        )
    if not isinstance(context, dict):
        raise CdsError(400, "'context' must be a JSON object.", expression=["context"])
    patient_id = context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise CdsError(
            400,
            "'context.patientId' is required and must be a FHIR resource id.",
            expression=["context.patientId"],
        )
    if not _FHIR_ID.match(patient_id):
        raise CdsError(
            400,
            f"'context.patientId' is not a valid FHIR id: {patient_id[:70]!r}.",
            expression=["context.patientId"],
        )
    user_id = context.get("userId")
    if user_id is not None and not isinstance(user_id, str):
        raise CdsError(
            400, "'context.userId' must be a string like 'Practitioner/123'.", expression=["context.userId"]
        )

    _check_order_context(hook, context)

    fhir_server = body.get("fhirServer")
    if fhir_server is not None and (
        not isinstance(fhir_server, str) or not re.match(r"^https?://[^\s/]+", fhir_server)
    ):
        raise CdsError(400, "'fhirServer' must be an absolute http(s) URL.", expression=["fhirServer"])

    auth = _parse_authorization(body.get("fhirAuthorization"))
    if auth is not None and not fhir_server:
        # Invariant cds-r-1: fhirAuthorization implies fhirServer.
        raise CdsError(
            400,
            "'fhirAuthorization' was sent without 'fhirServer' (CDS Hooks invariant cds-r-1).",
            expression=["fhirServer"],
        )

    prefetch = body.get("prefetch")
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, dict):
        raise CdsError(
            400,
            "'prefetch' must be a JSON object mapping prefetch keys to FHIR data.",
            expression=["prefetch"],
        )
    return CdsRequest(
        hook=hook,
        hook_instance=hook_instance,
        context=context,
        prefetch=prefetch,
        fhir_server=fhir_server.rstrip("/") if fhir_server else None,
        fhir_authorization=auth,
    )


ORDER_HOOKS = ("order-select", "order-sign")


def _check_order_context(hook: str, context: dict[str, Any]) -> None:
    """order-select / order-sign (CDS Hooks Library): draftOrders is a Bundle; order-select also needs
    ``selections``, references into it."""
    if hook not in ORDER_HOOKS:
        return
    draft = context.get("draftOrders")
    if not isinstance(draft, dict) or draft.get("resourceType") != "Bundle":
        raise CdsError(
            400,
            f"'context.draftOrders' is required for {hook} and must be a FHIR Bundle.",
            expression=["context.draftOrders"],
        )
    if not isinstance(draft.get("entry", []), list):
        raise CdsError(
            400, "'context.draftOrders.entry' must be an array.", expression=["context.draftOrders"]
        )
    if hook == "order-select":
        selections = context.get("selections")
        if not isinstance(selections, list) or not all(isinstance(x, str) and x for x in selections):
            raise CdsError(
                400,
                "'context.selections' is required for order-select: an array of 'Type/id' "
                "references into draftOrders.",
                expression=["context.selections"],
            )


def _parse_authorization(value: Any) -> FhirAuthorization | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CdsError(400, "'fhirAuthorization' must be a JSON object.", expression=["fhirAuthorization"])
    token = value.get("access_token")
    if not isinstance(token, str) or not token:
        raise CdsError(
            400,
            "'fhirAuthorization.access_token' is required.",
            expression=["fhirAuthorization.access_token"],
        )
    token_type = value.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise CdsError(
            400,
            "'fhirAuthorization.token_type' must be 'Bearer'.",
            expression=["fhirAuthorization.token_type"],
        )
    scope = value.get("scope")
    subject = value.get("subject")
    patient = value.get("patient")
    return FhirAuthorization(
        access_token=token,
        token_type="Bearer",
        scope=scope if isinstance(scope, str) else "",
        subject=subject if isinstance(subject, str) else "",
        patient=patient if isinstance(patient, str) else None,
    )


# ---------------------------------------------------------------- feedback (FB1–FB4)

FEEDBACK_OUTCOMES = ("accepted", "overridden")


@dataclass(frozen=True)
class FeedbackItem:
    """One validated feedback entry. ``card`` may be empty: the Sandbox dismisses cards without uuid."""

    card: str
    outcome: str
    outcome_timestamp: datetime
    accepted_suggestions: tuple[str, ...]
    override_reason_code: str | None
    override_reason_system: str | None
    override_reason_display: str | None
    override_comment: str | None
    raw: dict[str, Any]


def parse_feedback(body: Any) -> list[FeedbackItem]:
    """Validate a feedback body ``{"feedback": [...]}`` (cds-fb-1..3); ``CdsError(400)`` on violations."""
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list):
        raise CdsError(
            400, "The feedback body must be a JSON object with a 'feedback' array.", expression=["feedback"]
        )
    items = body["feedback"]
    if not items:
        raise CdsError(400, "The 'feedback' array is empty.", expression=["feedback"])
    return [_parse_feedback_item(item, i) for i, item in enumerate(items)]


def _parse_feedback_item(item: Any, i: int) -> FeedbackItem:
    where = f"feedback[{i}]"
    if not isinstance(item, dict):
        raise CdsError(400, f"{where} must be a JSON object.", expression=[where])
    card = item.get("card")
    if card is not None and not isinstance(card, str):
        raise CdsError(400, f"{where}.card must be the card's uuid string.", expression=[f"{where}.card"])
    outcome = item.get("outcome")
    if outcome not in FEEDBACK_OUTCOMES:
        raise CdsError(
            400,
            f"{where}.outcome must be 'accepted' or 'overridden' (cds-fb-1).",
            expression=[f"{where}.outcome"],
        )
    timestamp = _parse_timestamp(item.get("outcomeTimestamp"), f"{where}.outcomeTimestamp")

    accepted: list[str] = []
    raw_accepted = item.get("acceptedSuggestions")
    if outcome == "accepted" and (not isinstance(raw_accepted, list) or not raw_accepted):
        raise CdsError(
            400,
            f"{where}: an 'accepted' outcome needs acceptedSuggestions (cds-fb-2).",
            expression=[f"{where}.acceptedSuggestions"],
        )
    if raw_accepted is not None:
        if not isinstance(raw_accepted, list):
            raise CdsError(
                400,
                f"{where}.acceptedSuggestions must be an array.",
                expression=[f"{where}.acceptedSuggestions"],
            )
        for j, suggestion in enumerate(raw_accepted):
            sid = suggestion.get("id") if isinstance(suggestion, dict) else None
            if not isinstance(sid, str) or not sid:
                raise CdsError(
                    400,
                    f"{where}.acceptedSuggestions[{j}] must be an object with the suggestion's uuid in 'id'.",
                    expression=[f"{where}.acceptedSuggestions[{j}].id"],
                )
            accepted.append(sid)

    code = system = display = comment = None
    reason = item.get("overrideReason")
    if reason is not None:
        if outcome != "overridden":
            raise CdsError(
                400,
                f"{where}.overrideReason is only allowed with outcome 'overridden'.",
                expression=[f"{where}.overrideReason"],
            )
        if not isinstance(reason, dict):
            raise CdsError(
                400, f"{where}.overrideReason must be an object.", expression=[f"{where}.overrideReason"]
            )
        coding = reason.get("reason")
        comment_value = reason.get("userComment")
        if coding is None and comment_value is None:
            raise CdsError(
                400,
                f"{where}.overrideReason needs a 'reason' or a 'userComment' (cds-fb-3).",
                expression=[f"{where}.overrideReason"],
            )
        if coding is not None:
            if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
                raise CdsError(
                    400,
                    f"{where}.overrideReason.reason must be a Coding with a 'code'.",
                    expression=[f"{where}.overrideReason.reason"],
                )
            code = coding["code"]
            system = coding.get("system") if isinstance(coding.get("system"), str) else None
            display = coding.get("display") if isinstance(coding.get("display"), str) else None
        if comment_value is not None:
            if not isinstance(comment_value, str):
                raise CdsError(
                    400,
                    f"{where}.overrideReason.userComment must be a string.",
                    expression=[f"{where}.overrideReason.userComment"],
                )
            comment = comment_value
    return FeedbackItem(
        card=card or "",
        outcome=outcome,
        outcome_timestamp=timestamp,
        accepted_suggestions=tuple(accepted),
        override_reason_code=code,
        override_reason_system=system,
        override_reason_display=display,
        override_comment=comment,
        raw=item,
    )


def _parse_timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise CdsError(
            400,
            f"{where} is required (an RFC 3339 date-time, e.g. 2021-12-11T10:05:31Z).",
            expression=[where],
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in value:
        raise CdsError(
            400,
            f"{where} must be an RFC 3339 date-time with a time zone, got {value[:40]!r}.",
            expression=[where],
        )
    return parsed
