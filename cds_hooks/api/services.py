"""POST /cds-services/{id}: validate, run the pipeline (which leaves out snoozed cards and remembers the
cards shown), answer; what the audit trail needs is left on ``flask.g``."""

from __future__ import annotations

from flask import Blueprint, g, request

from cds_hooks.api import tracing
from cds_hooks.api.request_body import json_body
from cds_hooks.api.runtime import runtime
from cds_hooks.hooks.protocol import CdsError, parse_service_request

bp = Blueprint("services", __name__)


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> dict:
    rt = runtime()
    service = rt.pipeline.services.get(service_id)
    if service is None:
        raise CdsError(
            404, f"There is no CDS service with id '{service_id}'. See GET /cds-services for the list."
        )
    req = parse_service_request(json_body(), service.hook)
    g.hook_instance = req.hook_instance
    tracing.annotate(req.hook_instance, service.id, service.hook)
    # Card links point back at this service, as the EHR reaches it.
    answer = rt.pipeline.respond(service, req, base_url=rt.settings.public_base_url or request.host_url)
    g.card_count = len(answer.response["cards"])
    g.audit_patients = [answer.patient] if answer.patient else []
    g.audit_rules = [card.rule_id for card in answer.shown]
    return answer.response
