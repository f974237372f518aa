"""Order hooks (order-select, order-sign): judge draft MedicationRequests against the patient's record.

Reuses the patient-view facts, findings and medication classification; only what is specific to a draft
order lives here. On order-select only the selected drafts are judged (the others are context); on
order-sign every draft is. Findings are ``info`` on select and ``warning`` on sign, except animal insulin,
which is always a warning.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from cds_hooks.clinical.cards.context import CardContext
from cds_hooks.clinical.cards.render import render_card
from cds_hooks.clinical.facts.medications import (
    Currency,
    MedicationClassifier,
    classify_use,
    medication_classifier,
    medication_concepts,
)
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.clinical.rules import (
    RULES,
    Order,
    RuleInput,
    RuleResult,
    evaluate_until_valid,
    rule_input,
    share_out,
)
from cds_hooks.fhir.json_access import bundle_resources
from cds_hooks.fhir.resource_index import ResourceIndex

log = logging.getLogger(__name__)

DRAFT = "draft order"  # how a judged draft is labelled in card evidence
DRAFT_CURRENCY = Currency(current=True, past=False)  # a draft is judged as if it were taken from now on


def judged_drafts(hook: str, context: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(all resources in draftOrders, the MedicationRequests to judge)."""
    drafts = bundle_resources(context["draftOrders"])
    selections = set(context.get("selections") or []) if hook == "order-select" else None
    judged = [
        d
        for d in drafts
        if d.get("resourceType") == "MedicationRequest"
        and (selections is None or f"MedicationRequest/{d.get('id')}" in selections)
    ]
    return drafts, judged


def classified_drafts(
    judged: list[dict[str, Any]], index: ResourceIndex, classifier: MedicationClassifier, hook: str
) -> list[Order]:
    """The judged drafts that are insulins or systemic glucocorticoids, with their classification.

    A draft is judged on the elements the rules read (medication, dosage, status, intent, subject): an
    invalid other element is set aside and logged by the index. A draft that cannot be judged at all is
    logged at WARNING with the reason (never its content), not dropped silently."""
    orders = []
    for draft in judged:
        problem = index.problem(draft)
        if problem is None and not medication_concepts(draft, index):
            problem = "no medication the rules can read"
        if problem is not None:
            log.warning("%s: draft MedicationRequest not judged: %s", hook, problem)
            continue
        use = classify_use(draft, index, classifier, currency=DRAFT_CURRENCY, state=DRAFT)
        if use is not None:
            orders.append((use, draft))
    return orders


def evaluate_orders(
    index: ResourceIndex,
    *,
    hook: str,
    context: dict[str, Any],
    patient_id: str,
    knowledge: Knowledge,
    now: datetime,
    base_url: str,
    shown: list[tuple[RuleResult, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    drafts, judged = judged_drafts(hook, context)
    for resource in drafts:
        if resource.get("resourceType") == "Medication":
            index.add(resource)  # a draft may reference a Medication sent alongside it
    orders = classified_drafts(judged, index, medication_classifier(knowledge), hook)
    finding_indicator = "warning" if hook == "order-sign" else "info"

    def run() -> tuple[RuleInput, list[RuleResult]]:
        x = rule_input(index, knowledge, patient_id, now)
        results = share_out(
            [r for rule in RULES if rule.order and (r := rule.order(orders, x, finding_indicator))]
        )
        return x, results

    x, results = evaluate_until_valid(index, run)
    facts, findings = x.facts, x.findings
    ctx = CardContext(
        facts=facts,
        findings=findings,
        knowledge=knowledge,
        base_url=base_url.rstrip("/"),
        drafts=tuple(orders),
    )
    cards = [render_card(ctx, r) for r in results]
    if shown is not None:  # the caller remembers which rule result each card came from (card log)
        shown.extend(zip(results, cards, strict=True))
    return {"cards": cards}
