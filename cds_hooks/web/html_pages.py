"""What every HTML page of the service shares: the error page and the security headers."""

from __future__ import annotations

from flask import Response, make_response, render_template

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'"
)


def error_page(status: int, message: str) -> Response:
    """A plain HTML page with ``status`` and one sentence; never a stack trace."""
    return make_response(render_template("app/error.html", status=status, message=message), status)


def secure_headers(response: Response) -> Response:
    """No caching of patient or committee data, no referrer (URLs carry launch codes), no scripts."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
