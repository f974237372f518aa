"""Rule 5: a current systemic glucocorticoid with measured hyperglycaemia — steroid-induced
hyperglycaemia; at order-select/sign, a glucocorticoid ordered for a patient with diabetes or insulin
resistance."""

from __future__ import annotations

from cds_hooks.clinical.facts.model import Evidence, MedicationUse
from cds_hooks.clinical.findings import GLUCOSE_KINDS, prednisolone_total
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


def _mg(value: float) -> str:
    """mg as clinicians write them: at most one decimal, never exponent notation ("1250", "7.6")."""
    text = f"{round(value, 1):.1f}"
    return text[:-2] if text.endswith(".0") else text


def replacement(x: RuleInput, total: float | None) -> bool:
    """Replacement, not excess: adrenal insufficiency or hypopituitarism on the record and a known total
    at most ``glucocorticoid_replacement_max`` (issue 22 C8). An unknown dose is never replacement."""
    limit = x.knowledge.threshold("glucocorticoid_replacement_max")
    return bool(x.findings.adrenal_insufficiency) and total is not None and total <= limit


def high_dose(x: RuleInput, uses: list[MedicationUse], total: float | None) -> bool:
    """A prednisolone equivalent at or above ``glucocorticoid_high_dose``, or any methylprednisolone at or
    above ``methylprednisolone_pulse`` mg/day (pulse therapy): the card is a warning (issue 22 C8)."""
    pulse = x.knowledge.threshold("methylprednisolone_pulse")
    if any(m.glucocorticoid == "methylprednisolone" and (m.daily_mg or 0.0) >= pulse for m in uses):
        return True
    return total is not None and total >= x.knowledge.threshold("glucocorticoid_high_dose")


def all_day(uses: list[MedicationUse]) -> bool:
    """Glucose stays up day and night: dexamethasone (knowledge/glucocorticoids.toml ``all_day``) or a
    regimen given twice a day or more often (issue 22 C9: fasting glucose as well)."""
    return any(m.all_day or (m.administrations_per_day or 0.0) >= 2 for m in uses)


def variant(base: str, high: bool, day_long: bool) -> str:
    """The wording variant: ``default``/``order``, with ``high`` and ``all_day`` as they apply."""
    parts = [] if base == "default" else [base]
    parts += ["high"] if high else []
    parts += ["all_day"] if day_long else []
    return "_".join(parts) or "default"


def _dose_evidence(total: float | None) -> Evidence:
    if total is None:
        return Evidence("", "Daily glucocorticoid dose unknown (no structured dose): excess cannot be judged")
    return Evidence("", f"Total systemic glucocorticoid {_mg(total)} mg/day prednisolone equivalent")


def glucocorticoid_hyperglycemia(x: RuleInput) -> RuleResult | None:
    """A current systemic glucocorticoid with *measured* hyperglycaemia or hyperinsulinaemia (a diabetes
    diagnosis alone is not enough). Replacement is not excess: with adrenal insufficiency or
    hypopituitarism on the record and a prednisolone-equivalent total at most
    ``glucocorticoid_replacement_max``, no card; an unknown dose fires and says so (issue 14 item 9). A
    high dose or a methylprednisolone pulse is a warning; dexamethasone or a twice-daily regimen asks for
    fasting glucose as well (issue 22 C8, C9)."""
    f = x.findings
    if not f.current_glucocorticoid:
        return None
    signs = [s for s in (f.hyperglycaemia, f.insulin_elevated) if s]
    if not signs:
        return None
    total = f.glucocorticoid_prednisolone_mg
    if replacement(x, total):
        return None
    uses = [m for m in x.facts.medications if m.current and m.systemic_glucocorticoid]
    high = high_dose(x, uses, total)
    workup, pending = tests_to_propose(x, SCREENING)
    return RuleResult(
        rule_id=ID,
        variant=variant("default", high, all_day(uses)),
        evidence=(
            *cite(f.current_glucocorticoid),
            _dose_evidence(total),
            *cite(*signs, f.adrenal_insufficiency),
        ),
        workup=workup,
        pending=pending,
        medications=names(uses),
        indicator="warning" if high else None,
        prednisolone_mg=total,
        dose_unknown=total is None,
    )


def latest_glycaemia(x: RuleInput) -> tuple[Evidence, ...]:
    """The newest glucose (random or fasting) and the newest HbA1c in their windows, whatever their value:
    an order-hook card shows them (issue 22 B7)."""
    glucose = [r for k in GLUCOSE_KINDS for r in x.facts.lab(k) if r.value is not None]
    hba1c = [r for r in x.facts.lab("hba1c") if r.value is not None]
    newest = [max(results, key=lambda r: r.when) for results in (glucose, hba1c) if results]
    return tuple(r.evidence for r in newest)


def order_uses(steroids: list[MedicationUse], x: RuleInput) -> list[MedicationUse]:
    """The glucocorticoids the patient takes once the drafts are given: the drafts, and the current ones of
    another drug (a draft of the same drug renews or replaces it, and is not added to it)."""
    drafted = {m.glucocorticoid or m.name for m in steroids}
    current = [
        m
        for m in x.facts.medications
        if m.current and m.systemic_glucocorticoid and (m.glucocorticoid or m.name) not in drafted
    ]
    return [*steroids, *current]


def glucocorticoid_order(orders: list[Order], x: RuleInput, indicator: str) -> RuleResult | None:
    """A draft systemic glucocorticoid for a patient with hyperglycaemia, diabetes or an insulin-resistance
    finding: monitor glucose. Prevention at prescribing: a diabetes diagnosis is enough here. A replacement
    dose with adrenal insufficiency or hypopituitarism gets no card; a high dose is a warning on
    order-select too (issue 22 C8)."""
    steroids = [use for use, _ in orders if use.systemic_glucocorticoid]
    if not steroids:
        return None
    f = x.findings
    ir_findings = [r for rule in INSULIN_RESISTANCE_RULES if (r := rule.evaluate(x)) is not None]
    ir_conditions = [c.evidence for c in x.facts.conditions if "type-b-insulin-resistance" in c.groups]
    if not (f.hyperglycaemia or f.diabetes or ir_findings or ir_conditions):
        return None
    uses = order_uses(steroids, x)
    total = prednisolone_total(uses)
    if replacement(x, total):
        return None
    high = high_dose(x, uses, total)
    evidence = [
        *(u.evidence for u in steroids),
        # A glucocorticoid the patient already takes is what the order adds to (or duplicates): evidence
        # right under the draft, not one of the "other causes" of insulin resistance.
        *f.current_glucocorticoid.evidence,
        *([_dose_evidence(total)] if total is None or len(uses) > 1 else []),
        *f.hyperglycaemia.evidence,
        *latest_glycaemia(x),
        *f.diabetes.evidence,
        *ir_conditions,
    ]
    evidence += [e for r in ir_findings for e in r.evidence]
    return RuleResult(
        rule_id=ID,
        variant=variant("order", high, all_day(steroids)),
        evidence=tuple(dict.fromkeys(evidence)),
        medications=tuple(dict.fromkeys(u.name for u in steroids)),
        indicator="warning" if high else indicator,
        monitoring=("glucose",),
        prednisolone_mg=total,
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
            "Adrenal insufficiency or hypopituitarism, replacement dose (no card; an unknown dose fires)",
            "adrenal_insufficiency",
            "against",
            amount="glucocorticoid_prednisolone_mg",
            amount_unit="mg/day prednisolone equivalent",
            reads=("glucocorticoid_replacement_max",),
        ),
        Criterion(
            "High dose or methylprednisolone pulse (a warning)",
            "current_glucocorticoid",
            "supports",
            amount="glucocorticoid_prednisolone_mg",
            amount_unit="mg/day prednisolone equivalent",
            reads=("glucocorticoid_high_dose", "methylprednisolone_pulse"),
        ),
    ),
    workup=SCREENING,
    order=glucocorticoid_order,
)
