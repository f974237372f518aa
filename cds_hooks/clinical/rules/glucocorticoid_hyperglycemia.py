"""Rule 5: a current systemic glucocorticoid with measured hyperglycaemia — steroid-induced
hyperglycaemia; at order-select/sign, a glucocorticoid ordered for a patient with diabetes or insulin
resistance."""

from __future__ import annotations

from cds_hooks.clinical.facts.model import Evidence
from cds_hooks.clinical.rules import (
    ataxia_telangiectasia_ir,
    insulin_antibody_workup,
    type_b_insulin_resistance,
)
from cds_hooks.clinical.rules.base import (
    SCREENING,
    Criterion,
    Order,
    Rule,
    RuleInput,
    RuleResult,
    cite,
    names,
    tests_to_propose,
)
from cds_hooks.clinical.rules.signs import HYPERGLYCAEMIA, INSULIN_ELEVATED

ID = "glucocorticoid-hyperglycemia"

# Patient-view rules whose finding counts as "an active insulin-resistance card finding" for steroid orders.
INSULIN_RESISTANCE_RULES = (
    insulin_antibody_workup.RULE,
    type_b_insulin_resistance.RULE,
    ataxia_telangiectasia_ir.RULE,
)


def glucocorticoid_hyperglycemia(x: RuleInput) -> RuleResult | None:
    """A current systemic glucocorticoid with *measured* hyperglycaemia or hyperinsulinaemia (a diabetes
    diagnosis alone is not enough). Replacement is not excess: with adrenal insufficiency on the record
    and a prednisolone-equivalent total at most ``glucocorticoid_replacement_max``, no card; an unknown
    dose fires and says so (issue 14 item 9)."""
    f = x.findings
    if not f.current_glucocorticoid:
        return None
    signs = [s for s in (f.hyperglycaemia, f.insulin_elevated) if s]
    if not signs:
        return None
    total = f.glucocorticoid_prednisolone_mg
    replacement = x.knowledge.threshold("glucocorticoid_replacement_max")
    if f.adrenal_insufficiency and total is not None and total <= replacement:
        return None
    if total is None:
        dose = Evidence("", "Daily glucocorticoid dose unknown (no structured dose): excess cannot be judged")
    else:
        dose = Evidence("", f"Total systemic glucocorticoid {total:.3g} mg/day prednisolone equivalent")
    workup, pending = tests_to_propose(x, SCREENING)
    return RuleResult(
        rule_id=ID,
        variant="default",
        evidence=(*cite(f.current_glucocorticoid), dose, *cite(*signs, f.adrenal_insufficiency)),
        workup=workup,
        pending=pending,
        medications=names([m for m in x.facts.medications if m.current and m.systemic_glucocorticoid]),
        prednisolone_mg=total,
        dose_unknown=total is None,
    )


def glucocorticoid_order(orders: list[Order], x: RuleInput, indicator: str) -> RuleResult | None:
    """A draft systemic glucocorticoid for a patient with hyperglycaemia, diabetes or an insulin-resistance
    finding: monitor glucose. Prevention at prescribing: a diabetes diagnosis is enough here."""
    steroids = [use for use, _ in orders if use.systemic_glucocorticoid]
    if not steroids:
        return None
    f = x.findings
    ir_findings = [r for rule in INSULIN_RESISTANCE_RULES if (r := rule.evaluate(x)) is not None]
    ir_conditions = [c.evidence for c in x.facts.conditions if "type-b-insulin-resistance" in c.groups]
    if not (f.hyperglycaemia or f.diabetes or ir_findings or ir_conditions):
        return None
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
        rule_id=ID,
        variant="order",
        evidence=tuple(dict.fromkeys(evidence)),
        medications=tuple(dict.fromkeys(u.name for u in steroids)),
        indicator=indicator,
        monitoring=("glucose",),
    )


RULE = Rule(
    id=ID,
    evaluate=glucocorticoid_hyperglycemia,
    criteria=(
        Criterion(
            "Current systemic glucocorticoid",
            "current_glucocorticoid",
            "required",
            amount="glucocorticoid_prednisolone_mg",
            amount_unit="mg/day prednisolone equivalent",
        ),
        HYPERGLYCAEMIA,
        INSULIN_ELEVATED,
        Criterion(
            "Adrenal insufficiency with a replacement dose (no card; an unknown dose fires)",
            "adrenal_insufficiency",
            "against",
            amount="glucocorticoid_prednisolone_mg",
            amount_unit="mg/day prednisolone equivalent",
            reads=("glucocorticoid_replacement_max",),
        ),
    ),
    workup=SCREENING,
    order=glucocorticoid_order,
)
