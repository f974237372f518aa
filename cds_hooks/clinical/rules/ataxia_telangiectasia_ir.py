"""Rule 4: ataxia-telangiectasia — insulin resistance and diabetes: screen, or act on hyperglycaemia."""

from __future__ import annotations

from cds_hooks.clinical.rules.base import (
    SCREENING,
    Criterion,
    Rule,
    RuleInput,
    RuleResult,
    cite,
    tests_to_propose,
)
from cds_hooks.clinical.rules.signs import HYPERGLYCAEMIA, INSULIN_ELEVATED

ID = "ataxia-telangiectasia-ir"
WORKUP = ("glucose", "hba1c", "insulin")


def ataxia_telangiectasia_ir(x: RuleInput) -> RuleResult | None:
    """Ataxia-telangiectasia with hyperglycaemia (measured or diagnosed) or hyperinsulinaemia, or never
    screened; the screening card is silent while a glucose or HbA1c test is pending."""
    f = x.findings
    if not f.ataxia_telangiectasia:
        return None
    signs = [s for s in (f.hyperglycaemia, f.diabetes, f.insulin_elevated) if s]
    if signs:
        workup, pending = tests_to_propose(x, WORKUP)
        return RuleResult(
            rule_id=ID,
            variant="hyperglycaemia",
            evidence=cite(f.ataxia_telangiectasia, *signs),
            workup=workup,
            pending=pending,
        )
    if f.glycaemia_tested:
        return None
    workup, pending = tests_to_propose(x, SCREENING)
    if pending:
        return None
    return RuleResult(
        rule_id=ID,
        variant="screening",
        evidence=cite(f.ataxia_telangiectasia),
        workup=workup,
    )


RULE = Rule(
    id=ID,
    evaluate=ataxia_telangiectasia_ir,
    criteria=(
        Criterion("Ataxia-telangiectasia", "ataxia_telangiectasia", "required"),
        HYPERGLYCAEMIA,
        Criterion("Diabetes on the record", "diabetes", "any of"),
        INSULIN_ELEVATED,
        Criterion(
            "No glucose or HbA1c within the screening look-back (screening)",
            "glycaemia_tested",
            "any of",
            negate=True,
        ),
        Criterion("Glucose or HbA1c test pending (no screening card)", role="against", pending=SCREENING),
    ),
    workup=WORKUP,
)
