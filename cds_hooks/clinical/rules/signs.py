"""Criteria that more than one rule names: the signs of antibody-mediated resistance and of glycaemia."""

from __future__ import annotations

from cds_hooks.clinical.facts.model import Evidence, MedicationUse
from cds_hooks.clinical.findings import Finding, Findings
from cds_hooks.clinical.rules.base import Criterion, RuleInput
from cds_hooks.clinical.switch_dose import SwitchPlan, covering_insulin

LABILE = Criterion(
    "Labile glucose (low and high within the window, or high variability)", "labile_glucose", "any of"
)
EXTREME = Criterion("Extreme insulin requirement", "extreme_requirement", "any of")
MARKED = Criterion("Markedly raised insulin level", "insulin_marked", "any of")
HYPERGLYCAEMIA = Criterion(
    "Hyperglycaemia, measured (glucose, fasting glucose, OGTT or HbA1c)", "hyperglycaemia", "any of"
)
INSULIN_ELEVATED = Criterion("Raised insulin level", "insulin_elevated", "any of")

# Signs of antibody-mediated resistance; a positive insulin antibody alone is not one (issue 14 item 8).
SIGNS_OF_ANTIBODIES = (LABILE, EXTREME, MARKED)

# What sizes the switch (clinical/switch_dose.py): hypoglycaemia risk factors make the larger cut (issue
# 22 A1, A2), the groups a specialist team doses leave the dose out (A3), a glucocorticoid with measured
# hyperglycaemia keeps it (B7).
SWITCH_PLAN = (
    Criterion(
        "Glucose below the level-2 limit recently (larger cut; a warning)",
        "recent_level2_hypoglycaemia",
        "supports",
    ),
    Criterion("Glucose below the level-1 limit recently (larger cut)", "recent_hypoglycaemia", "supports"),
    Criterion(
        "Impaired awareness of hypoglycaemia (larger cut; a warning)", "impaired_awareness", "supports"
    ),
    Criterion("eGFR below the limit, CKD stage 4–5 or dialysis (larger cut)", "renal_impairment", "supports"),
    Criterion("Older age (larger cut)", "older_age", "supports"),
    Criterion("Under the adult age (no dose: paediatric diabetes team)", "child", "supports"),
    Criterion("Pregnant (no dose: diabetes-pregnancy team)", "pregnancy", "supports"),
    Criterion("On dialysis (no dose: renal and diabetes teams)", "dialysis", "supports"),
    Criterion("On an insulin pump (no dose: diabetes pump team)", "insulin_pump", "supports"),
    Criterion("A glucocorticoid with measured hyperglycaemia keeps the dose", "hyperglycaemia", "supports"),
    Criterion(
        "Current systemic glucocorticoid (larger cut, or the dose kept)", "current_glucocorticoid", "supports"
    ),
    Criterion("Continuous glucose monitoring on the record (supervision by CGM)", "cgm", "supports"),
)


def antibody_signs(f: Findings) -> list[Finding]:
    """The signs of antibody-mediated resistance present: the antibody workup fires on them, the plain
    switch only without them."""
    return [s for s in (f.labile_glucose, f.extreme_requirement, f.insulin_marked) if s]


def switch_evidence(
    x: RuleInput, plan: SwitchPlan, animal: tuple[MedicationUse, ...]
) -> tuple[Evidence, ...]:
    """What a switching card cites beside its own findings: the group whose team doses the switch, each
    hypoglycaemia risk factor, the glucose that keeps the dose, and a current human insulin that
    already covers what an animal insulin gives (issue 22 A1, A3, A5, B7)."""
    covering = [c.evidence for m in animal if (c := covering_insulin(x.facts, m)) is not None]
    kept = x.findings.hyperglycaemia.evidence if plan.keep_dose else ()
    return tuple(dict.fromkeys([*plan.evidence, *kept, *covering]))
