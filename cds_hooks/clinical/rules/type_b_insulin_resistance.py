"""Rule 3: type B insulin resistance (insulin-receptor antibodies) — confirmed, suspected, or at an
extreme draft insulin order."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from cds_hooks.clinical.facts.model import Evidence, MedicationUse
from cds_hooks.clinical.findings import Finding, extreme_dose
from cds_hooks.clinical.rules import insulin_autoimmune_syndrome as ias
from cds_hooks.clinical.rules.base import (
    Criterion,
    Order,
    Rule,
    RuleInput,
    RuleResult,
    cite,
    tests_to_propose,
)
from cds_hooks.clinical.rules.signs import EXTREME, MARKED

ID = "type-b-insulin-resistance"
WORKUP = ("insulin_receptor_antibody", "insulin_antibody", "ana", "insulin", "c_peptide")


def _recent_negative_receptor_antibody(x: RuleInput) -> bool:
    if not x.findings.receptor_antibody_negative:
        return False
    since = x.facts.now - timedelta(days=x.knowledge.threshold("receptor_ab_negative_lookback"))
    negatives = [r for r in x.facts.lab("insulin_receptor_antibody") if r.positive is False]
    return any(r.when >= since for r in negatives)


# With a confirmed type B, the insulin level and C-peptide measure the resistance when the patient is not
# on insulin (issue 22 D10: a type B card without an insulin value or requirement proposes them).
CONFIRMED_WORKUP = ("ana", "insulin", "c_peptide")


def severe_resistance(x: RuleInput) -> list[Finding]:
    """Measured severe insulin resistance (issue 22 D10): on insulin, an extreme requirement; off insulin,
    a markedly elevated insulin (exogenous insulin and its antibodies distort the assay, so a level
    counts only off insulin). Nothing else: no insulin value and no requirement, no severe resistance."""
    f = x.findings
    if f.current_insulin:
        return [f.extreme_requirement] if f.extreme_requirement else []
    return [f.insulin_marked] if f.insulin_marked else []


def type_b_insulin_resistance(x: RuleInput) -> RuleResult | None:
    """Confirmed by a positive insulin-receptor antibody; or suspected from measured severe insulin
    resistance (``severe_resistance``) **and** autoimmunity (an autoimmune disease, or ANA >= 1:160 /
    positive without titre) **and** a feature that obesity does not explain (``findings.type_b_support``:
    BMI < 30, fasting hypoglycaemia, >= 3 U/kg/day, triglycerides < 150 mg/dL, high SHBG or adiponectin).
    Not suspected when insulin autoimmune syndrome explains the high insulin (rule 6) or a recent
    insulin-receptor antibody was negative."""
    f = x.findings
    if f.receptor_antibody_positive:
        kinds = CONFIRMED_WORKUP if not f.current_insulin else ("ana",)
        workup, pending = tests_to_propose(x, kinds)
        return RuleResult(
            rule_id=ID,
            variant="confirmed",
            evidence=cite(
                f.receptor_antibody_positive,
                f.autoimmune_disease,
                f.ana_positive,
                f.insulin_marked,
                f.extreme_requirement,
            ),
            workup=workup,
            pending=pending,
            referral=True,
        )
    severe = severe_resistance(x)
    autoimmune = [s for s in (f.autoimmune_disease, f.ana_type_b) if s]
    if not severe or not autoimmune or not f.type_b_support or _recent_negative_receptor_antibody(x):
        return None
    if ias.insulin_autoimmune_syndrome(x) is not None:
        return None
    workup, pending = tests_to_propose(x, WORKUP)
    return RuleResult(
        rule_id=ID,
        variant="suspected",
        evidence=cite(*severe, f.type_b_support, *autoimmune),
        workup=workup,
        pending=pending,
        referral=True,
    )


def type_b_order(orders: list[Order], x: RuleInput, indicator: str) -> RuleResult | None:
    """A draft insulin order at an extreme daily dose (``findings.extreme_dose``, the comparison of the
    patient's own requirement) with a supporting feature of type B, in a patient with autoimmunity and no
    insulin-receptor antibody result in the look-back: work up type B insulin resistance."""
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

    extreme = [u for u in insulins if any(extreme_dose(u.daily_units or 0.0, kg, k))]
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
    workup, pending = tests_to_propose(x, WORKUP)
    return RuleResult(
        rule_id=ID,
        variant="order",
        evidence=tuple(dict.fromkeys(evidence)),
        indicator=indicator,
        workup=workup,
        pending=pending,
        referral=True,
    )


RULE = Rule(
    id=ID,
    evaluate=type_b_insulin_resistance,
    criteria=(
        Criterion("Insulin-receptor antibody positive (confirms)", "receptor_antibody_positive", "any of"),
        replace(EXTREME, label="Extreme insulin requirement (severe resistance, on insulin)"),
        replace(MARKED, label="Markedly raised insulin level (severe resistance, counts off insulin)"),
        Criterion(
            "Feature obesity does not explain (needed when not confirmed): BMI below the limit (acanthosis"
            " nigricans only with it), fasting hypoglycaemia, high dose per kg, low triglycerides, high SHBG"
            " or adiponectin",
            "type_b_support",
            "supports",
        ),
        Criterion("On insulin", "current_insulin", "supports"),
        Criterion(
            "Autoimmune disease (autoimmunity, needed when not confirmed)", "autoimmune_disease", "supports"
        ),
        Criterion(
            "ANA at the type B titre or positive without titre (autoimmunity)", "ana_type_b", "supports"
        ),
        Criterion("ANA positive (listed with a confirmed type B)", "ana_positive", "supports"),
        Criterion(
            "Insulin-receptor antibody negative",
            "receptor_antibody_negative",
            "against",
            reads=("receptor_ab_negative_lookback",),
        ),
        Criterion(
            "Insulin autoimmune syndrome explains the raised insulin (its card is shown instead)",
            role="against",
            rule=ias.ID,
            # Its verdict cites the insulin:C-peptide ratio (issue 22 D11), read through the call.
            reads=("insulin_c_peptide_ratio_high",),
        ),
    ),
    workup=WORKUP,
    order=type_b_order,
)
