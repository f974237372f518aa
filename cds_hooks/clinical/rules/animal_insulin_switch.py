"""Rule 1: a current animal insulin without signs of antibody-mediated resistance — switch to human insulin.

On the order hooks, a draft animal-insulin order is replaced by the human-insulin order (always a warning).
"""

from __future__ import annotations

from dataclasses import replace

from cds_hooks.clinical.rules.base import (
    Criterion,
    Order,
    Rule,
    RuleInput,
    RuleResult,
    cite,
    current_animal,
    names,
)
from cds_hooks.clinical.rules.signs import SIGNS_OF_ANTIBODIES, SWITCH_PLAN, antibody_signs, switch_evidence
from cds_hooks.clinical.switch_dose import plan_switch

ID = "animal-insulin-switch"


def animal_insulin_switch(x: RuleInput) -> RuleResult | None:
    """A current animal insulin without signs of antibody-mediated resistance (with them, the antibody
    workup fires instead: a current animal insulin is always an exposure): an ``info`` card, prevention
    being the point (issue 14 item 4). A positive antibody result is listed."""
    if not x.findings.current_animal_insulin or antibody_signs(x.findings):
        return None
    plan = plan_switch(x.knowledge, x.facts, x.findings)
    animal = current_animal(x.facts)
    return RuleResult(
        rule_id=ID,
        variant="default",
        evidence=cite(x.findings.current_animal_insulin, x.findings.insulin_antibody_positive)
        + switch_evidence(x, plan, animal),
        switch_from=animal,
        medications=names(animal),
        # Level-2 hypoglycaemia or impaired awareness makes the switch urgent (issue 22 A2).
        indicator="warning" if plan.warning else "info",
        plan=plan,
    )


def animal_insulin_order(orders: list[Order], x: RuleInput, indicator: str) -> RuleResult | None:
    """A draft animal-insulin order: replace it with human insulin (a warning on both order hooks)."""
    animal = [(use, draft) for use, draft in orders if use.animal_insulin]
    if not animal:
        return None
    return RuleResult(
        rule_id=ID,
        variant="order",
        evidence=tuple(use.evidence for use, _ in animal),
        medications=tuple(dict.fromkeys(use.name for use, _ in animal)),
        indicator="warning",
        replace_drafts=tuple(animal),
        plan=plan_switch(x.knowledge, x.facts, x.findings),
    )


RULE = Rule(
    id=ID,
    evaluate=animal_insulin_switch,
    criteria=(
        Criterion("Current animal insulin", "current_animal_insulin", "required"),
        *(replace(c, role="against") for c in SIGNS_OF_ANTIBODIES),
        Criterion(
            "Insulin antibody positive (listed; alone not a sign of resistance)",
            "insulin_antibody_positive",
            "supports",
        ),
        *SWITCH_PLAN,
    ),
    order=animal_insulin_order,
    switch=True,
)
