"""GET /cds-services/{id}/stats: feedback analytics as JSON (off unless CDS_HOOKS_STATS_ENDPOINT=true)."""

from __future__ import annotations

from flask import Blueprint, request

from cds_hooks.api.runtime import runtime
from cds_hooks.fhir.dates import parse_fhir_datetime
from cds_hooks.hooks.protocol import CdsError
from cds_hooks.store.analytics import feedback_report

bp = Blueprint("stats", __name__)


@bp.get("/cds-services/<service_id>/stats")
def stats(service_id: str) -> dict:
    rt = runtime()
    if not rt.settings.stats_endpoint:
        raise CdsError(404, "No such endpoint. Service discovery is at GET /cds-services.")
    if service_id not in rt.services:
        raise CdsError(404, f"There is no CDS service with id '{service_id}'.")
    since = None
    if "since" in request.args:
        since = parse_fhir_datetime(request.args["since"])
        if since is None:
            raise CdsError(400, "'since' must be a date or date-time, e.g. 2026-11-01.")
    report = feedback_report(rt.store, since=since, service_id=service_id)
    return {
        "service": service_id,
        "since": since.isoformat() if since else None,
        "rules": [s.as_dict() for s in report],
    }
