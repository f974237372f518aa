"""The pure core: resources → patient facts → findings → rule results → cards. No Flask, no network."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .cards import CardContext, render_card
from .fhir_client import bundle_resources
from .knowledge import Knowledge, default_knowledge
from .orders import evaluate_orders
from .prefetch import checked_value
from .protocol import ORDER_HOOKS, CdsError, parse_service_request
from .resource_index import ResourceIndex
from .rules import RuleInput, RuleResult, evaluate_rules, evaluate_until_valid, rule_input

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

    def run() -> tuple[RuleInput, list[RuleResult]]:
        x = rule_input(index, knowledge, patient_id, now)
        return x, evaluate_rules(x)

    x, results = evaluate_until_valid(index, run)
    facts, findings = x.facts, x.findings
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
        if checked_value(key, value)["resourceType"] == "Bundle":
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
