"""Reading a JSON request body safely: content type, size, syntax and nesting depth."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

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
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH (Content-Length given)
    _refuse_longer_stream(len(raw))
    if not raw:
        raise CdsError(400, "The request body is empty; a JSON object is required.")
    try:
        return json_codec.loads(raw)
    except json_codec.JSONDecodeError as exc:
        if "depth limit" in str(exc).lower():
            raise CdsError(400, "The request body is nested too deeply (over 1,024 levels).") from exc
        raise CdsError(400, f"The request body is not valid JSON: {_json_reason(exc)}.") from exc


def _refuse_longer_stream(read: int) -> None:
    """A chunked body (no Content-Length) is cut at the limit by Werkzeug without an error: if there is
    more to read, the body is too large (413), not truncated JSON (400)."""
    limit = request.max_content_length
    chunked = request.content_length is None
    if chunked and limit is not None and read >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def _json_reason(exc: json_codec.JSONDecodeError) -> str:
    if exc.msg.startswith("str is not valid UTF-8"):
        return "it is not UTF-8 text"
    return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
