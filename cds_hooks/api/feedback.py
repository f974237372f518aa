"""POST /cds-services/{id}/feedback: validated, stored once per item (FB1–FB4)."""

from __future__ import annotations

from flask import Blueprint, g

from cds_hooks.api.request_body import json_body
from cds_hooks.api.runtime import runtime
from cds_hooks.hooks.protocol import CdsError, parse_feedback
from cds_hooks.process import metrics

bp = Blueprint("feedback", __name__)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> dict:
    rt = runtime()
    if service_id not in rt.services:
        raise CdsError(404, f"There is no CDS service with id '{service_id}'.")
    items = parse_feedback(json_body())
    rt.recorder.flush()  # the cards this worker showed are in the card log before feedback is matched
    # Synchronous and committed before the answer: snooze, signing and analytics rest on it.
    result = rt.store.record_feedback(service_id, items)
    for item in items:
        metrics.count_feedback(service_id, item.outcome)
    g.audit_patients = result.patients
    g.audit_rules = result.rules
    g.audit_outcomes = sorted({item.outcome for item in items})
    body: dict = {"received": len(items), "stored": result.stored, "duplicates": result.duplicates}
    if result.unknown_cards:
        # Accepted and stored, but flagged: the service never issued these card uuids.
        body["unknownCards"] = result.unknown_cards
    return body
