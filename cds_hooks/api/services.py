"""POST /cds-services/{id}: validate, run the pipeline, record the cards issued, answer."""

from __future__ import annotations

from flask import Blueprint, g, request

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
    # Card links point back at this service, as the EHR reaches it.
    response = rt.pipeline.run(service, req, base_url=rt.settings.public_base_url or request.host_url)
    g.card_count = len(response["cards"])
    rt.store.record_cards(service.id, req.hook_instance, response["cards"])
    return response
