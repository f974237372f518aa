"""POST /cds-services/{id}: validate, resolve prefetch (fetching what is missing), evaluate, answer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, g, request

from ..app import runtime
from ..evaluation import evaluate_index
from ..fhir_client import FhirClient
from ..prefetch import resolve, resolve_medication_references
from ..protocol import CdsError, CdsRequest, parse_service_request
from ..resource_index import ResourceIndex
from .request_body import json_body

bp = Blueprint("services", __name__)
log = logging.getLogger("cds_hooks.services")


def _client(req: CdsRequest) -> FhirClient | None:
    if not req.fhir_server:
        return None
    rt = runtime()
    s = rt.settings
    return FhirClient(
        base_url=req.fhir_server,
        session=rt.session,
        access_token=req.fhir_authorization.access_token if req.fhir_authorization else None,
        connect_timeout=s.fhir_connect_timeout,
        read_timeout=s.fhir_read_timeout,
        max_pages=s.fhir_max_pages,
    )


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> dict:
    rt = runtime()
    service = rt.services.get(service_id)
    if service is None:
        raise CdsError(
            404, f"There is no CDS service with id '{service_id}'. See GET /cds-services for the list."
        )
    req = parse_service_request(json_body(), service.hook)
    g.hook_instance = req.hook_instance
    client = _client(req)
    resolution = resolve(req, service.prefetch, client, max_workers=rt.settings.fhir_max_workers)
    fetched = sorted(k for k, v in resolution.source.items() if v in ("fetched", "paged"))
    if fetched:
        log.info("fetched from fhirServer: %s", ",".join(fetched), extra={"fetched": fetched})
    index = ResourceIndex(resolution.all_resources())
    unresolved = resolve_medication_references(index, client, rt.settings.fhir_max_workers)
    if unresolved:
        log.warning("%d medication reference(s) could not be resolved", len(unresolved))
    response = evaluate_index(
        index,
        patient_id=req.patient_id,
        knowledge=rt.knowledge,
        now=datetime.now(UTC),
        # Card links point back at this service, as the EHR reaches it.
        base_url=rt.settings.public_base_url or request.host_url,
    )
    g.card_count = len(response["cards"])
    rt.store.record_cards(service.id, req.hook_instance, response["cards"])
    return response
