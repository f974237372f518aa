"""The audit trail: one FHIR ``AuditEvent`` per service and feedback call — who asked (the client's
``iss``, ``sub`` and ``kid``), which service and hook, about which patient (the keyed pseudonym, never
the id), which rules' cards were shown, and how it ended.

Shaped after IHE Basic Audit Log Patterns (BALP): ``type`` rest, ``subtype`` the interaction, the
client agent as requestor (``who.identifier`` = ``sub`` within the ``iss`` system, ``policy`` = the
token's ``jti``), the service as the other agent, the patient as an entity with role Patient, and the
hook instance as a second entity carrying the hook and the rules shown.

``CDS_HOOKS_AUDIT``: ``db`` (the ``audit_event`` table; ``CDS_HOOKS_AUDIT_RETENTION_DAYS`` prunes old
rows), ``file:<path>`` (JSON lines appended), ``stdout`` (JSON lines), or ``off``.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

AUDIT_MODES = ("db", "stdout", "off")  # plus "file:<path>"
PSEUDONYM_SYSTEM = "https://immune-ir-cds.example.org/fhir/NamingSystem/patient-pseudonym"
HOOK_INSTANCE_SYSTEM = "https://immune-ir-cds.example.org/fhir/NamingSystem/hook-instance"
SERVICE_SYSTEM = "https://immune-ir-cds.example.org/fhir/NamingSystem/cds-service"
RULE_SYSTEM = "https://immune-ir-cds.example.org/fhir/CodeSystem/rules"
KID_EXTENSION = "https://immune-ir-cds.example.org/fhir/StructureDefinition/jwt-kid"
OBSERVER = "immune-ir-cds-hooks"

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_EVENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_SUBTYPE = {
    "service": {"system": _INTERACTION, "code": "operation", "display": "operation"},
    "feedback": {"system": _INTERACTION, "code": "create", "display": "create"},
}
_ACTION = {"service": "E", "feedback": "C"}  # execute / create
_SOURCE_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
    "code": "4",
    "display": "Application Server",
}


@dataclass
class AuditRecord:
    """What one call leaves for the audit trail (filled during the request, turned into JSON later)."""

    kind: str  # "service" | "feedback"
    recorded: datetime
    service_id: str
    hook: str
    status: int
    hook_instance: str | None = None
    iss: str | None = None
    sub: str | None = None
    kid: str | None = None
    jti: str | None = None
    client_address: str | None = None
    patients: list[str] = field(default_factory=list)  # pseudonyms
    rules: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # feedback outcomes


def outcome_code(status: int) -> str:
    """AuditEvent.outcome: 0 success, 4 minor failure (refused: 4xx), 8 serious failure (5xx)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def audit_event(record: AuditRecord) -> dict[str, Any]:
    client: dict[str, Any] = {
        "type": {"coding": [{"system": _DCM, "code": "110153", "display": "Source Role ID"}]},
        "requestor": True,
    }
    if record.iss or record.sub:
        identifier: dict[str, Any] = {"value": record.sub or "(no sub)"}
        if record.iss:
            identifier["system"] = record.iss
        client["who"] = {"identifier": identifier}
    else:
        client["who"] = {"display": "unauthenticated client"}
    if record.jti:
        client["policy"] = [record.jti]
    if record.kid:
        client["extension"] = [{"url": KID_EXTENSION, "valueString": record.kid}]
    if record.client_address:
        client["network"] = {"address": record.client_address, "type": "2"}
    server = {
        "type": {"coding": [{"system": _DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": {"identifier": {"system": SERVICE_SYSTEM, "value": record.service_id}},
        "requestor": False,
    }
    entities: list[dict[str, Any]] = [
        {
            "what": {"identifier": {"system": PSEUDONYM_SYSTEM, "value": pseudonym}},
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "1",
                "display": "Person",
            },
            "role": {
                "system": "http://terminology.hl7.org/CodeSystem/object-role",
                "code": "1",
                "display": "Patient",
            },
        }
        for pseudonym in record.patients
    ]
    details = [{"type": "hook", "valueString": record.hook}]
    if record.rules:
        details.append({"type": "rules", "valueString": " ".join(record.rules)})
    if record.outcomes:
        details.append({"type": "feedback-outcomes", "valueString": " ".join(record.outcomes)})
    call: dict[str, Any] = {
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            "code": "2",
            "display": "System Object",
        },
        "role": {
            "system": "http://terminology.hl7.org/CodeSystem/object-role",
            "code": "3",
            "display": "Report",
        },
        "detail": details,
    }
    if record.hook_instance:
        call["what"] = {"identifier": {"system": HOOK_INSTANCE_SYSTEM, "value": record.hook_instance}}
    entities.append(call)
    return {
        "resourceType": "AuditEvent",
        "id": str(uuid.uuid4()),
        "type": _EVENT_TYPE,
        "subtype": [_SUBTYPE[record.kind]],
        "action": _ACTION[record.kind],
        "recorded": record.recorded.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": outcome_code(record.status),
        "outcomeDesc": f"HTTP {record.status}",
        "agent": [client, server],
        "source": {"observer": {"display": OBSERVER}, "type": [_SOURCE_TYPE]},
        "entity": entities,
    }


class JsonLinesSink:
    """Audit events as JSON lines, appended to a file or written to standard output."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, events: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
        with self._lock:
            if self.path is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                # One write per batch on an O_APPEND file: lines of concurrent workers never interleave.
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(text)
