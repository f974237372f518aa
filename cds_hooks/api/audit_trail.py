"""One audit record per service and feedback call, whatever its outcome (refused calls included),
queued for the recorder's writer thread, which turns it into a FHIR AuditEvent (store.audit)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, Response, g, request

from cds_hooks.api.runtime import runtime
from cds_hooks.store.audit import AuditRecord

AUDITED = {"services.call_service": "service", "feedback.feedback": "feedback"}


def register_audit_trail(app: Flask) -> None:
    @app.after_request
    def audit(response: Response) -> Response:
        kind = AUDITED.get(request.endpoint or "")
        if kind is None:
            return response
        rt = runtime()
        service_id = str((request.view_args or {}).get("service_id", ""))[:128]
        service = rt.services.get(service_id)
        token = g.get("jwt")
        rt.recorder.audit(
            AuditRecord(
                kind=kind,
                recorded=datetime.now(UTC),
                service_id=service_id,
                hook=service.hook if service else "",
                status=response.status_code,
                hook_instance=g.get("hook_instance"),
                iss=getattr(token, "iss", None),
                sub=getattr(token, "sub", None),
                kid=getattr(token, "kid", None),
                jti=getattr(token, "jti", None),
                client_address=request.remote_addr,
                patients=list(g.get("audit_patients", [])),
                rules=list(g.get("audit_rules", [])),
                outcomes=list(g.get("audit_outcomes", [])),
            )
        )
        return response
