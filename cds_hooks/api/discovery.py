"""GET /cds-services: the discovery document (D1–D3); GET /openapi.json: the OpenAPI description."""

from __future__ import annotations

from flask import Blueprint

from cds_hooks.api.openapi import openapi_document
from cds_hooks.api.runtime import runtime

bp = Blueprint("discovery", __name__)


@bp.get("/openapi.json")
def openapi() -> dict:
    return openapi_document(list(runtime().services))


@bp.get("/cds-services")
def discovery() -> dict:
    return {"services": [s.discovery_entry() for s in runtime().services.values()]}
