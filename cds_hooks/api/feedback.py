"""POST /cds-services/{id}/feedback: validated, stored once per item (FB1–FB4)."""

from __future__ import annotations

from flask import Blueprint

from cds_hooks.api.request_body import json_body
from cds_hooks.api.runtime import runtime
from cds_hooks.hooks.protocol import CdsError, parse_feedback

bp = Blueprint("feedback", __name__)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> dict:
    rt = runtime()
    if service_id not in rt.services:
        raise CdsError(404, f"There is no CDS service with id '{service_id}'.")
    items = parse_feedback(json_body())
    result = rt.store.record_feedback(service_id, items)
    body: dict = {"received": len(items), "stored": result.stored, "duplicates": result.duplicates}
    if result.unknown_cards:
        # Accepted and stored, but flagged: the service never issued these card uuids.
        body["unknownCards"] = result.unknown_cards
    return body
