"""The pure core: resources → patient facts → findings → rule results → cards. No Flask, no network."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .cards import CardContext, render_card
from .facts.build import build_facts
from .fhir_client import bundle_resources
from .findings import derive
from .knowledge import Knowledge, default_knowledge
from .protocol import parse_service_request
from .resource_index import ResourceIndex
from .rules import RuleInput, evaluate_rules

DEFAULT_BASE_URL = "http://localhost:8080"


def evaluate_index(
    index: ResourceIndex,
    *,
    patient_id: str,
    knowledge: Knowledge,
    now: datetime,
    base_url: str = DEFAULT_BASE_URL,
) -> dict[str, Any]:
    """Evaluate the patient-view rules over an index of the patient's resources."""
    facts = build_facts(index, knowledge, patient_id, now)
    findings = derive(facts, knowledge)
    results = evaluate_rules(RuleInput(facts=facts, findings=findings, knowledge=knowledge))
    ctx = CardContext(facts=facts, findings=findings, knowledge=knowledge, base_url=base_url.rstrip("/"))
    sources = {
        f"{r.get('resourceType')}/{r.get('id')}": r
        for rtype in ("MedicationStatement", "MedicationRequest")
        for r in index.of_type(rtype)
    }
    return {"cards": [render_card(ctx, result, sources) for result in results]}


def evaluate_offline(
    request: dict[str, Any],
    *,
    now: datetime | None = None,
    knowledge: Knowledge | None = None,
    base_url: str = DEFAULT_BASE_URL,
) -> dict[str, Any]:
    """Evaluate a saved patient-view request from its prefetch alone (absent keys count as no data).

    For tests, vignettes and the ``evaluate`` command; the HTTP service instead fetches absent keys."""
    req = parse_service_request(
        request, request.get("hook", "patient-view") if isinstance(request, dict) else "patient-view"
    )
    index = ResourceIndex()
    for value in req.prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            for resource in bundle_resources(value):
                index.add(resource)
        elif value.get("resourceType") != "OperationOutcome":
            index.add(value)
    return evaluate_index(
        index,
        patient_id=req.patient_id,
        knowledge=knowledge or default_knowledge(),
        now=now or datetime.now(UTC),
        base_url=base_url,
    )
