"""GET /healthz: liveness plus a database round trip, for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import text

from cds_hooks.api.errors import error_response
from cds_hooks.api.runtime import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    try:
        with runtime().store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # any database failure means "not healthy", whatever the driver raises
        return error_response(503, "The database is not reachable.", "transient")
    return {"status": "ok", "services": len(runtime().services)}
