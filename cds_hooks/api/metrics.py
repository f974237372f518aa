"""GET /metrics (Prometheus text format) and the per-request observations behind it.

Off unless ``CDS_HOOKS_METRICS=true`` (then 404 like any unknown path); with ``CDS_HOOKS_METRICS_TOKEN``
set, a scraper must send ``Authorization: Bearer <token>``. Labels are bounded: the endpoint, a known
service id (else ``unknown``), its hook and the status code.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, g, request

from cds_hooks.api.errors import error_response
from cds_hooks.api.runtime import runtime
from cds_hooks.hooks.protocol import CdsError
from cds_hooks.process import metrics

bp = Blueprint("metrics", __name__)

ENDPOINTS = {
    "services.call_service": "service",
    "feedback.feedback": "feedback",
    "discovery.discovery": "discovery",
    "discovery.openapi": "openapi",
    "health.healthz": "health",
    "sources.source": "sources",
    "stats.stats": "stats",
    "metrics.scrape": "metrics",
}


@bp.get("/metrics")
def scrape() -> Response:
    settings = runtime().settings
    if not settings.metrics:
        raise CdsError(404, "No such endpoint. Service discovery is at GET /cds-services.")
    if settings.metrics_token and not _bearer_matches(settings.metrics_token):
        response = error_response(401, "GET /metrics needs the configured bearer token.", "login")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def _bearer_matches(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def register_request_metrics(app: Flask) -> None:
    @app.after_request
    def observe(response: Response) -> Response:
        if not metrics.enabled():
            return response
        endpoint = ENDPOINTS.get(request.endpoint or "", "other")
        service_id = (request.view_args or {}).get("service_id")
        service = runtime().services.get(service_id) if service_id else None
        started = g.get("started")
        metrics.observe_request(
            endpoint,
            service.id if service else ("unknown" if service_id else ""),
            service.hook if service else "",
            response.status_code,
            time.perf_counter() - started if started is not None else 0.0,
        )
        return response
