"""GET /cds-services: the discovery document (D1–D3)."""

from __future__ import annotations

from flask import Blueprint

from ..app import runtime

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> dict:
    return {"services": [s.discovery_entry() for s in runtime().services.values()]}
