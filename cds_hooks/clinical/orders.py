"""Order hooks (order-select, order-sign): judge draft MedicationRequests against the patient's record.

Reuses the patient-view facts, findings and medication classification; only what is specific to a draft
order lives here. On order-select only the selected drafts are judged (the others are context); on
order-sign every draft is. Findings are ``info`` on select and ``warning`` on sign, except animal insulin,
which is always a warning.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
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
from cds_hooks.clinical.facts.model import Evidence, MedicationUse
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.clinical.rules import (
    ANIMAL_INSULIN_SWITCH,
    ATAXIA_TELANGIECTASIA,
    GLUCOCORTICOID,
    INSULIN_ANTIBODY_WORKUP,
    TYPE_B,
    TYPE_B_WORKUP,
    RuleInput,
    RuleResult,
    evaluate_rules,
    evaluate_until_valid,
    rule_input,
    tests_to_propose,
)
from cds_hooks.fhir.json_access import bundle_resources
from cds_hooks.fhir.resource_index import ResourceIndex

log = logging.getLogger(__name__)

DRAFT = "draft order"  # how a judged draft is labelled in card evidence
DRAFT_CURRENCY = Currency(current=True, past=False)  # a draft is judged as if it were taken from now on

# Patient-view findings that count as "an active insulin-resistance card finding" for steroid orders.
INSULIN_RESISTANCE_RULES = frozenset({INSULIN_ANTIBODY_WORKUP, TYPE_B, ATAXIA_TELANGIECTASIA})


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
) -> list[tuple[MedicationUse, dict[str, Any]]]:
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
        results = [
            r
            for r in (
                _animal_insulin_order(orders),
                _type_b_order(orders, x, finding_indicator),
                _glucocorticoid_order(orders, x, finding_indicator),
            )
            if r is not None
        ]
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


def _animal_insulin_order(orders: list[tuple[MedicationUse, dict[str, Any]]]) -> RuleResult | None:
    animal = [(use, draft) for use, draft in orders if use.animal_insulin]
    if not animal:
        return None
    return RuleResult(
        rule_id=ANIMAL_INSULIN_SWITCH,
        variant="order",
        evidence=tuple(use.evidence for use, _ in animal),
        medications=tuple(dict.fromkeys(use.name for use, _ in animal)),
        indicator="warning",
        replace_drafts=tuple(animal),
    )


def _glucocorticoid_order(
    orders: list[tuple[MedicationUse, dict[str, Any]]], x: RuleInput, indicator: str
) -> RuleResult | None:
    steroids = [use for use, _ in orders if use.systemic_glucocorticoid]
    if not steroids:
        return None
    f = x.findings
    ir_findings = [r for r in evaluate_rules(x) if r.rule_id in INSULIN_RESISTANCE_RULES]
    ir_conditions = [c.evidence for c in x.facts.conditions if "type-b-insulin-resistance" in c.groups]
    if not (f.hyperglycaemia or f.diabetes or ir_findings or ir_conditions):
        return None  # prevention at prescribing: a diabetes diagnosis is enough here (issue 14 item 9)
    evidence = [
        *(u.evidence for u in steroids),
        # A glucocorticoid the patient already takes is what the order adds to (or duplicates): evidence
        # right under the draft, not one of the "other causes" of insulin resistance.
        *f.current_glucocorticoid.evidence,
        *f.hyperglycaemia.evidence,
        *f.diabetes.evidence,
        *ir_conditions,
    ]
    evidence += [e for r in ir_findings for e in r.evidence]
    return RuleResult(
        rule_id=GLUCOCORTICOID,
        variant="order",
        evidence=tuple(dict.fromkeys(evidence)),
        medications=tuple(dict.fromkeys(u.name for u in steroids)),
        indicator=indicator,
        monitoring=("glucose",),
    )


def _type_b_order(
    orders: list[tuple[MedicationUse, dict[str, Any]]], x: RuleInput, indicator: str
) -> RuleResult | None:
    """A draft insulin order at an extreme daily dose with a supporting feature of type B (>= 3 U/kg/day,
    fasting hypoglycaemia, acanthosis nigricans, BMI < 30), in a patient with autoimmunity and no
    insulin-receptor antibody result in the lookback: work up type B insulin resistance."""
    k, f = x.knowledge, x.findings
    insulins = [use for use, _ in orders if use.insulin and use.daily_units is not None]
    autoimmune = [s for s in (f.autoimmune_disease, f.ana_type_b) if s]
    if not insulins or not autoimmune:
        return None
    since = x.facts.now - timedelta(days=k.threshold("receptor_ab_negative_lookback"))
    if any(r.when >= since for r in x.facts.lab("insulin_receptor_antibody")):
        return None
    weight = x.facts.latest_weight_kg
    kg = weight.value if weight is not None and weight.value else None

    def per_kg(use: MedicationUse) -> float:
        return (use.daily_units or 0.0) / kg if kg else 0.0

    extreme = [
        u
        for u in insulins
        if (u.daily_units or 0) > k.threshold("tdd_extreme") or per_kg(u) > k.threshold("tdd_extreme_per_kg")
    ]
    if not extreme:
        return None
    support = [e for e in f.type_b_support.evidence]
    if any(per_kg(u) >= k.threshold("tdd_type_b_support_per_kg") for u in extreme):
        support.append(Evidence("", f"Ordered {max(per_kg(u) for u in extreme):.2f} U/kg/day"))
    if not support:
        return None
    evidence = [*(u.evidence for u in extreme), *(e for a in autoimmune for e in a.evidence), *support]
    if weight is not None:
        evidence.append(weight.evidence)
    workup, pending = tests_to_propose(x, TYPE_B_WORKUP)
    return RuleResult(
        rule_id=TYPE_B,
        variant="order",
        evidence=tuple(dict.fromkeys(evidence)),
        indicator=indicator,
        workup=workup,
        pending=pending,
        referral=True,
    )
