"""Rule 6: never on insulin, a positive insulin antibody and hypoglycaemia or a markedly raised insulin —
consider insulin autoimmune syndrome (Hirata disease; reference §4b, §4d), with the workup of
hypoglycaemia the Endocrine Society guideline asks for (Cryer PE et al., JCEM 2009;94:709-28)."""

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
# Issue 22 D11: insulin and C-peptide of one sample (their molar ratio), proinsulin, beta-hydroxybutyrate
# and the sulfonylurea/meglitinide screen during hypoglycaemia, and the insulin-receptor antibody.
WORKUP = (
    "insulin",
    "c_peptide",
    "proinsulin",
    "beta_hydroxybutyrate",
    "sulfonylurea_screen",
    "insulin_receptor_antibody",
)


def insulin_autoimmune_syndrome(x: RuleInput) -> RuleResult | None:
    """Never on insulin, a positive insulin antibody, and fasting hypoglycaemia (any glucose < 54 mg/dL
    included) or markedly elevated insulin. A sulfonylurea or meglitinide on the record, or a positive
    hypoglycaemic agent screen, makes it the "secretagogue" variant: the hypoglycaemia may be the drug's.
    Known trigger drugs are listed; the insulin:C-peptide molar ratio is cited when one sample has both."""
    f = x.findings
    if f.insulin_ever or not f.insulin_antibody_positive:
        return None
    signs = [s for s in (f.fasting_hypoglycaemia, f.insulin_marked) if s]
    if not signs:
        return None
    triggers = [m for m in x.facts.medications if m.insulin_autoimmune_trigger]
    secretagogues = [m for m in x.facts.medications if m.current and m.insulin_secretagogue]
    # A valid recent result is not proposed again (``tests_to_propose``); the card's prose asks for
    # insulin and C-peptide in one sample during hypoglycaemia.
    workup, pending = tests_to_propose(x, WORKUP)
    if f.secretagogue:
        variant = "secretagogue"
    elif triggers:
        variant = "triggers"
    else:
        variant = "default"
    evidence = [
        *cite(f.insulin_antibody_positive, *signs, f.secretagogue, f.insulin_c_peptide_ratio),
        *(m.evidence for m in triggers),
    ]
    return RuleResult(
        rule_id=ID,
        variant=variant,
        evidence=tuple(dict.fromkeys(evidence)),
        workup=workup,
        pending=pending,
        referral=True,
        medications=names([*secretagogues, *triggers]),
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
        Criterion(
            "A sulfonylurea or meglitinide current, or a positive hypoglycaemic agent screen (the"
            " hypoglycaemia may be the drug's)",
            "secretagogue",
            "supports",
        ),
        Criterion(
            "Insulin:C-peptide molar ratio of one sample (above the limit: exogenous or antibody-bound"
            " insulin)",
            "insulin_c_peptide_ratio",
            "supports",
        ),
    ),
    workup=WORKUP,
)
