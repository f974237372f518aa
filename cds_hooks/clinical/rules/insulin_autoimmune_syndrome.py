"""Rule 6: never on insulin, a positive insulin antibody and hypoglycaemia or a markedly raised insulin —
consider insulin autoimmune syndrome (Hirata disease; reference §4b, §4d)."""

from __future__ import annotations

from cds_hooks.clinical.rules.base import (
    Criterion,
    Rule,
    RuleInput,
    RuleResult,
    cite,
    names,
    tests_to_propose,
)
from cds_hooks.clinical.rules.signs import MARKED

ID = "insulin-autoimmune-syndrome"
WORKUP = ("insulin", "c_peptide", "insulin_receptor_antibody")


def insulin_autoimmune_syndrome(x: RuleInput) -> RuleResult | None:
    """Never on insulin, a positive insulin antibody, and fasting hypoglycaemia (any glucose < 54 mg/dL
    included) or markedly elevated insulin. Known trigger drugs on the record are listed."""
    f = x.findings
    if f.insulin_ever or not f.insulin_antibody_positive:
        return None
    signs = [s for s in (f.fasting_hypoglycaemia, f.insulin_marked) if s]
    if not signs:
        return None
    triggers = [m for m in x.facts.medications if m.insulin_autoimmune_trigger]
    workup, pending = tests_to_propose(x, WORKUP)
    return RuleResult(
        rule_id=ID,
        variant="triggers" if triggers else "default",
        evidence=tuple(
            dict.fromkeys([*cite(f.insulin_antibody_positive, *signs), *(m.evidence for m in triggers)])
        ),
        workup=workup,
        pending=pending,
        referral=True,
        medications=names(triggers),
    )


RULE = Rule(
    id=ID,
    evaluate=insulin_autoimmune_syndrome,
    criteria=(
        Criterion("Insulin antibody positive", "insulin_antibody_positive", "required"),
        Criterion("Never on any insulin", "insulin_ever", "required", negate=True),
        Criterion(
            "Fasting hypoglycaemia or any glucose below the level-2 limit", "fasting_hypoglycaemia", "any of"
        ),
        MARKED,
        Criterion(
            "A known trigger drug on the record (sulfhydryl group)",
            role="supports",
            medication_flag="insulin_autoimmune_trigger",
        ),
    ),
    workup=WORKUP,
)
