"""Reading a JSON request body safely: content type, size, syntax and nesting depth."""

from __future__ import annotations

from typing import Any

from flask import request

from cds_hooks.fhir import json_codec
from cds_hooks.hooks.protocol import CdsError

JSON_TYPES = ("application/json", "application/fhir+json")


def json_body() -> Any:
    """The decoded JSON body, or ``CdsError(400)`` with a reason a person can act on."""
    mimetype = request.mimetype or ""
    if mimetype not in JSON_TYPES and not mimetype.endswith("+json"):
        raise CdsError(
            400, f"The request must have Content-Type application/json (got {mimetype or 'none'!r})."
        )
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw:
        raise CdsError(400, "The request body is empty; a JSON object is required.")
    try:
        return json_codec.loads(raw)
    except json_codec.JSONDecodeError as exc:
        if "depth limit" in str(exc).lower():
            raise CdsError(400, "The request body is nested too deeply (over 1,024 levels).") from exc
        raise CdsError(400, f"The request body is not valid JSON: {_json_reason(exc)}.") from exc


def _json_reason(exc: json_codec.JSONDecodeError) -> str:
    if exc.msg.startswith("str is not valid UTF-8"):
        return "it is not UTF-8 text"
    return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
