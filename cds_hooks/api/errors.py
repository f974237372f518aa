"""Every non-2xx answer as a FHIR OperationOutcome: CDS errors, HTTP errors, and unexpected exceptions
(whose traceback goes to the server log only)."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from cds_hooks.api.runtime import runtime
from cds_hooks.hooks.protocol import CdsError, operation_outcome

log = logging.getLogger("cds_hooks.request")

# An oversized body is read and dropped up to this many times the limit before the 413 is sent.
DISCARD_FACTOR = 4
_CHUNK = 64 * 1024


def error_response(
    status: int, message: str, code: str | None = None, expression: list[str] | None = None
) -> Response:
    error = CdsError(status, message, code=code, expression=expression)
    body = operation_outcome(error.message, code=error.code, expression=error.expression)
    return Response(json.dumps(body), status=status, mimetype="application/fhir+json")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CdsError)
    def cds_error(exc: CdsError) -> Response:
        return error_response(exc.status, exc.message, exc.code, exc.expression)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        messages = {
            404: "No such endpoint. Service discovery is at GET /cds-services.",
            405: f"Method {request.method} is not allowed on {request.path}.",
            413: f"The request body is larger than the limit of {runtime().settings.max_body_bytes} bytes.",
        }
        if status == 413:
            discard_body(runtime().settings.max_body_bytes * DISCARD_FACTOR)
        response = error_response(status, messages.get(status, exc.description or exc.name))
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        # The traceback goes to the server log only; the client sees a generic OperationOutcome.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            500, "The service could not process the request because of an internal error.", "exception"
        )


def discard_body(budget: int) -> None:
    """Read and drop what is left of the request body, at most ``budget`` bytes.

    A client that writes its whole body before reading the answer (urllib, many Java clients) would
    otherwise find the connection reset under it and never see the 413. A body larger than the budget
    is not read: the connection is closed after the answer, as before."""
    environ = request.environ
    stream = environ.get("wsgi.input")
    length = request.content_length
    if stream is None:
        return
    if length is not None:
        remaining = length if length <= budget else 0
    elif environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream at the last chunk
        remaining = budget
    else:
        return
    try:
        while remaining > 0:
            chunk = stream.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
    except OSError:  # the client gave up; the answer goes nowhere either way
        return
