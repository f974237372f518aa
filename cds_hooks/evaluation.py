"""The pure core: resources → patient facts → findings → rule results → cards. No Flask, no network."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .cards import CardContext, render_card
from .facts.build import build_facts
from .fhir_client import bundle_resources
from .findings import derive
from .knowledge import Knowledge, default_knowledge
from .orders import evaluate_orders
from .protocol import ORDER_HOOKS, CdsError, parse_service_request
from .resource_index import ResourceIndex
from .rules import MAX_VALIDATION_ROUNDS, RuleInput, cited_references, evaluate_rules

DEFAULT_BASE_URL = "http://localhost:8080"
HOOKS = ("patient-view", *ORDER_HOOKS)


def evaluate_index(
    index: ResourceIndex,
    *,
    patient_id: str,
    knowledge: Knowledge,
    now: datetime,
    base_url: str = DEFAULT_BASE_URL,
) -> dict[str, Any]:
    """Evaluate the patient-view rules over an index of the patient's resources."""
    for _ in range(MAX_VALIDATION_ROUNDS):
        facts = build_facts(index, knowledge, patient_id, now)
        findings = derive(facts, knowledge)
        results = evaluate_rules(RuleInput(facts=facts, findings=findings, knowledge=knowledge))
        # Cards rest only on valid FHIR R4: an invalid cited resource is set aside and the rules rerun.
        if not index.reject_invalid(cited_references(results)):
            break
    ctx = CardContext(facts=facts, findings=findings, knowledge=knowledge, base_url=base_url.rstrip("/"))
    sources = {
        f"{r.get('resourceType')}/{r.get('id')}": r
        for rtype in ("MedicationStatement", "MedicationRequest")
        for r in index.of_type(rtype)
    }
    return {"cards": [render_card(ctx, result, sources) for result in results]}


def evaluate_hook(
    index: ResourceIndex,
    *,
    hook: str,
    context: dict[str, Any],
    patient_id: str,
    knowledge: Knowledge,
    now: datetime,
    base_url: str = DEFAULT_BASE_URL,
) -> dict[str, Any]:
    """Evaluate the rules of ``hook``: the patient's record, and for the order hooks its draft orders."""
    if hook in ORDER_HOOKS:
        return evaluate_orders(
            index,
            hook=hook,
            context=context,
            patient_id=patient_id,
            knowledge=knowledge,
            now=now,
            base_url=base_url,
        )
    return evaluate_index(index, patient_id=patient_id, knowledge=knowledge, now=now, base_url=base_url)


def evaluate_offline(
    request: dict[str, Any],
    *,
    now: datetime | None = None,
    knowledge: Knowledge | None = None,
    base_url: str = DEFAULT_BASE_URL,
) -> dict[str, Any]:
    """Evaluate a saved request (patient-view, order-select or order-sign) from its prefetch alone: absent
    keys count as no data. For tests, vignettes and ``cds-hooks evaluate``; the HTTP service instead
    fetches absent keys."""
    hook = request.get("hook") if isinstance(request, dict) else None
    if hook not in HOOKS:
        raise CdsError(400, f"'hook' must be one of {', '.join(HOOKS)}.", expression=["hook"])
    req = parse_service_request(request, hook)
    index = ResourceIndex()
    for key, value in req.prefetch.items():
        if value is None:
            continue
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise CdsError(
                400,
                f"prefetch['{key}'] must be a FHIR resource, a Bundle or null.",
                expression=[f"prefetch.{key}"],
            )
        if value["resourceType"] == "Bundle":
            for resource in bundle_resources(value):
                index.add(resource)
        elif value["resourceType"] != "OperationOutcome":
            index.add(value)
    return evaluate_hook(
        index,
        hook=hook,
        context=req.context,
        patient_id=req.patient_id,
        knowledge=knowledge or default_knowledge(),
        now=now or datetime.now(UTC),
        base_url=base_url,
    )
