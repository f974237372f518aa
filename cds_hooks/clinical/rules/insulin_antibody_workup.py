"""Rule 2: animal insulin with signs of antibody-mediated insulin resistance — work up insulin antibodies."""

from __future__ import annotations

from cds_hooks.clinical.rules.base import (
    Criterion,
    Rule,
    RuleInput,
    RuleResult,
    cite,
    current_animal,
    names,
    tests_to_propose,
)
from cds_hooks.clinical.rules.signs import SIGNS_OF_ANTIBODIES, SWITCH_PLAN, antibody_signs, switch_evidence
from cds_hooks.clinical.switch_dose import plan_switch

ID = "insulin-antibody-workup"
WORKUP = ("insulin_antibody", "insulin", "c_peptide", "glucose", "hba1c")
# Human insulin or an analogue with a positive antibody and an extreme requirement (issue 22 A6;
# reference §1c; seed: insulin and C-peptide, insulin and insulin-receptor antibodies tell the types of
# insulin resistance apart): the tests not yet done.
HUMAN_WORKUP = ("insulin", "c_peptide", "insulin_receptor_antibody")


def insulin_antibody_workup(x: RuleInput) -> RuleResult | None:
    """Animal insulin (current, or ended within ``animal_insulin_past_years``) with at least one sign of
    antibody-mediated resistance: labile glucose, extreme requirement or markedly elevated insulin. A
    positive insulin antibody makes it "likely"; on its own it is not a sign (most insulin-treated
    patients have antibodies, reference §1c)."""
    f = x.findings
    if not f.animal_insulin_exposure:
        return human_insulin_antibodies(x)
    signs = antibody_signs(f)
    if not signs:
        return None
    workup, pending = tests_to_propose(x, WORKUP)
    exposed = set(f.animal_insulin_exposure.evidence)
    animal = current_animal(x.facts)
    plan = plan_switch(x.knowledge, x.facts, x.findings) if animal else None
    return RuleResult(
        rule_id=ID,
        variant="likely" if f.insulin_antibody_positive else "workup",
        evidence=cite(f.animal_insulin_exposure, *signs, f.insulin_antibody_positive)
        + (switch_evidence(x, plan, animal) if plan else ()),
        workup=workup,
        pending=pending,
        switch_from=animal,
        medications=names([m for m in x.facts.medications if m.evidence in exposed]),
        plan=plan,
    )


def human_insulin_antibodies(x: RuleInput) -> RuleResult | None:
    """No animal insulin in the exposure window, but human insulin or an analogue now, a positive insulin
    antibody and an extreme requirement (> 2 U/kg/day or > 200 U/day, ``findings.extreme_requirement``):
    consider antibody-mediated resistance to human insulin (rare; reference §1c). No switch: there is no
    animal insulin to switch from."""
    f = x.findings
    if not (f.current_insulin and f.insulin_antibody_positive and f.extreme_requirement):
        return None
    workup, pending = tests_to_propose(x, HUMAN_WORKUP)
    return RuleResult(
        rule_id=ID,
        variant="human",
        evidence=cite(f.insulin_antibody_positive, f.extreme_requirement),
        workup=workup,
        pending=pending,
        referral=True,
    )


RULE = Rule(
    id=ID,
    evaluate=insulin_antibody_workup,
    criteria=(
        Criterion(
            "Animal insulin, current or ended within the exposure window (undated past use does not count;"
            " without it, see human insulin below)",
            "animal_insulin_exposure",
            "any of",
        ),
        *SIGNS_OF_ANTIBODIES,
        Criterion(
            "Insulin antibody positive (makes it likely; alone not a sign; on human insulin or an analogue"
            " with an extreme requirement, consider antibodies to human insulin)",
            "insulin_antibody_positive",
            "supports",
        ),
        *SWITCH_PLAN,
        Criterion(
            "On human insulin or an analogue, no animal exposure (with a positive antibody and an extreme"
            " requirement)",
            "current_insulin",
            "any of",
        ),
    ),
    workup=tuple(dict.fromkeys([*WORKUP, *HUMAN_WORKUP])),
    switch=True,
)
