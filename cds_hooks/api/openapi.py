"""The OpenAPI 3 description of the service's own endpoints, served at ``/openapi.json``.

Integrators read it to see exactly what the service accepts and answers; the fuzz suite generates
requests from it (schemathesis) and checks that every answer matches it.
"""

from __future__ import annotations

from typing import Any

from cds_hooks import __version__

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/fhir+json": {"schema": _ref("OperationOutcome")}},
    }


CODING = {
    "type": "object",
    "required": ["code"],
    "properties": {"system": {"type": "string"}, "code": {"type": "string"}, "display": {"type": "string"}},
}

SCHEMAS: dict[str, Any] = {
    "OperationOutcome": {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"const": "OperationOutcome"},
            "issue": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["severity", "code", "details", "diagnostics"],
                    "properties": {
                        "severity": {"enum": ["fatal", "error", "warning", "information"]},
                        "code": {"type": "string"},
                        "details": {
                            "type": "object",
                            "required": ["text"],
                            "properties": {"text": {"type": "string"}},
                        },
                        "diagnostics": {"type": "string"},
                        "expression": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "Coding": CODING,
    "Service": {
        "type": "object",
        "required": ["hook", "id", "description"],
        "properties": {
            "hook": {"type": "string"},
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "usageRequirements": {"type": "string"},
            "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
            "version": {"type": "string", "description": "CDS Hooks version implemented (3.0: RECOMMENDED)"},
            "hookVersion": {"type": "string", "description": "version of the hook definition (3.0)"},
        },
    },
    "Discovery": {
        "type": "object",
        "required": ["services"],
        "properties": {"services": {"type": "array", "items": _ref("Service")}},
    },
    "ServiceRequest": {
        "type": "object",
        "required": ["hook", "hookInstance", "context"],
        "properties": {
            "hook": {"type": "string", "enum": ["patient-view", "order-select", "order-sign"]},
            "hookInstance": {"type": "string", "format": "uuid"},
            "fhirServer": {"type": "string", "format": "uri"},
            "fhirAuthorization": {
                "type": "object",
                "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
                "properties": {
                    "access_token": {"type": "string"},
                    "token_type": {"const": "Bearer"},
                    "expires_in": {"type": "integer"},
                    "scope": {"type": "string"},
                    "subject": {"type": "string"},
                    "patient": {"type": "string"},
                },
            },
            "context": {
                "type": "object",
                "required": ["patientId"],
                "properties": {
                    "userId": {"type": "string"},
                    "patientId": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"},
                    "encounterId": {"type": "string"},
                    "selections": {"type": "array", "items": {"type": "string"}},
                    "draftOrders": {"type": "object"},
                },
            },
            "prefetch": {
                "type": "object",
                "additionalProperties": {"oneOf": [{"type": "object"}, {"type": "null"}]},
            },
        },
    },
    "Action": {
        "type": "object",
        "required": ["type", "description"],
        "properties": {
            "type": {"enum": ["create", "update", "delete"]},
            "description": {"type": "string"},
            "resource": {"type": "object"},
            "resourceId": {"type": "string"},
        },
    },
    "Suggestion": {
        "type": "object",
        "required": ["label"],
        "properties": {
            "label": {"type": "string"},
            "uuid": {"type": "string"},
            "isRecommended": {"type": "boolean"},
            "actions": {"type": "array", "items": _ref("Action")},
        },
    },
    "Card": {
        "type": "object",
        "required": ["summary", "indicator", "source"],
        "properties": {
            "uuid": {"type": "string"},
            "summary": {"type": "string", "maxLength": 139},
            "detail": {"type": "string"},
            "indicator": {"enum": ["info", "warning", "critical"]},
            "source": {
                "type": "object",
                "required": ["label"],
                "properties": {
                    "label": {"type": "string"},
                    "url": {"type": "string"},
                    "topic": CODING,
                },
            },
            "suggestions": {"type": "array", "items": _ref("Suggestion")},
            "selectionBehavior": {"enum": ["at-most-one", "any"]},
            "overrideReasons": {"type": "array", "items": CODING},
            "links": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["label", "url", "type"],
                    "properties": {
                        "label": {"type": "string"},
                        "url": {"type": "string"},
                        "type": {"enum": ["absolute", "smart"]},
                    },
                },
            },
        },
    },
    "ServiceResponse": {
        "type": "object",
        "required": ["cards"],
        "properties": {"cards": {"type": "array", "items": _ref("Card")}},
    },
    "FeedbackRequest": {
        "type": "object",
        "required": ["feedback"],
        "properties": {
            "feedback": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["outcome", "outcomeTimestamp"],
                    "properties": {
                        "card": {"type": "string"},
                        "outcome": {"enum": ["accepted", "overridden"]},
                        "acceptedSuggestions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id"],
                                "properties": {"id": {"type": "string"}},
                            },
                        },
                        "overrideReason": {
                            "type": "object",
                            "properties": {"reason": CODING, "userComment": {"type": "string"}},
                        },
                        "outcomeTimestamp": {"type": "string", "format": "date-time"},
                    },
                },
            }
        },
    },
    "FeedbackResponse": {
        "type": "object",
        "required": ["received", "stored", "duplicates"],
        "properties": {
            "received": {"type": "integer"},
            "stored": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "unknownCards": {"type": "array", "items": {"type": "string"}},
        },
    },
}

SERVICE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document(service_ids: list[str]) -> dict[str, Any]:
    """The document for this deployment (the service ids are listed as examples)."""
    service_id = {**SERVICE_ID, "schema": {"type": "string", "enum": service_ids}}
    common_errors = {
        "400": _error("Malformed request: the OperationOutcome says what to fix."),
        "401": _error("Missing or invalid JWT (when CDS_HOOKS_JWT=required)."),
        "404": _error("Unknown service id."),
        "413": _error("Request body over the size limit."),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Immune-mediated insulin resistance CDS Hooks service",
            "version": __version__,
            "description": "CDS Hooks 2.0.1 discovery, service and feedback endpoints.",
        },
        "paths": {
            "/cds-services": {
                "get": {
                    "operationId": "discovery",
                    "responses": {
                        "200": {
                            "description": "The services.",
                            "content": {JSON: {"schema": _ref("Discovery")}},
                        },
                        "401": common_errors["401"],
                    },
                }
            },
            "/cds-services/{id}": {
                "post": {
                    "operationId": "callService",
                    "parameters": [service_id],
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("ServiceRequest")}}},
                    "responses": {
                        "200": {
                            "description": "Cards.",
                            "content": {JSON: {"schema": _ref("ServiceResponse")}},
                        },
                        **common_errors,
                        "412": _error("Required prefetch data missing and not obtainable from fhirServer."),
                    },
                }
            },
            "/cds-services/{id}/feedback": {
                "post": {
                    "operationId": "feedback",
                    "parameters": [service_id],
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("FeedbackRequest")}}},
                    "responses": {
                        "200": {
                            "description": "How many items were stored.",
                            "content": {JSON: {"schema": _ref("FeedbackResponse")}},
                        },
                        **common_errors,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "responses": {
                        "200": {"description": "Healthy.", "content": {JSON: {"schema": {"type": "object"}}}},
                        "503": _error("The database is not reachable."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "description": "Prometheus metrics; off unless CDS_HOOKS_METRICS=true (then 404).",
                    "responses": {
                        "200": {
                            "description": "Metrics in the Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": _error(
                            "CDS_HOOKS_METRICS_TOKEN is set and the bearer token is missing or wrong."
                        ),
                        "404": _error("Metrics are off."),
                    },
                }
            },
        },
        "components": {"schemas": SCHEMAS},
    }
