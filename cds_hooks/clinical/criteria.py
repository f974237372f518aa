"""Why a rule did or did not fire, criterion by criterion: for the "why this card" table.

Each rule declares its criteria here, next to the rules: which finding (``clinical.findings``) each
criterion is, how the criteria combine, and which thresholds it compares against. Whether a criterion
is met is read from the very ``Findings`` object the card was built from, and whether the rule fired is
the rule function's own answer — this module never re-implements a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from cds_hooks.clinical.findings import Finding
from cds_hooks.clinical.rules import (
    ANIMAL_INSULIN_SWITCH,
    ATAXIA_TELANGIECTASIA,
    GLUCOCORTICOID,
    INSULIN_ANTIBODY_WORKUP,
    TYPE_B,
    Rule,
    RuleInput,
    RuleResult,
    animal_insulin_switch,
    ataxia_telangiectasia_ir,
    glucocorticoid_hyperglycemia,
    insulin_antibody_workup,
    type_b_insulin_resistance,
)

MAX_VALUES = 3  # evidence lines shown per criterion


@dataclass(frozen=True)
class Criterion:
    """One criterion of a rule: a finding, its role, and the thresholds it compares against."""

    label: str
    finding: str  # attribute of ``Findings``
    role: str  # "required" | "any of" | "supports" | "against"
    thresholds: tuple[str, ...] = ()
    negate: bool = False  # the criterion is met when the finding is absent


@dataclass(frozen=True)
class ThresholdUse:
    """A threshold as the finding compares with it: ``glucose hyper random ≥ 200 mg/dL``."""

    name: str
    comparison: str  # "≥", ">", "<" or "within"
    value: float
    unit: str

    def __str__(self) -> str:
        return f"{self.name.replace('_', ' ')} {self.comparison} {self.value:g} {self.unit}".strip()


@dataclass(frozen=True)
class CriterionRow:
    label: str
    role: str
    met: bool
    values: tuple[str, ...]  # the patient's values (evidence lines), in the finding's order
    by_absence: bool  # met because the finding is absent (e.g. never screened)
    thresholds: tuple[ThresholdUse, ...]


@dataclass(frozen=True)
class Explanation:
    rule_id: str
    fired: bool
    variant: str | None
    rows: tuple[CriterionRow, ...]


_SIGNS_OF_ANTIBODIES = (
    Criterion(
        "Labile glucose (low and high within the window, or high variability)",
        "labile_glucose",
        "any of",
        ("labile_low", "labile_high", "labile_window", "labile_cv"),
    ),
    Criterion(
        "Extreme insulin requirement", "extreme_requirement", "any of", ("tdd_extreme", "tdd_extreme_per_kg")
    ),
    Criterion("Markedly raised insulin level", "insulin_marked", "any of", ("insulin_marked",)),
    Criterion("Insulin antibody positive", "insulin_antibody_positive", "any of"),
)

RULES: dict[str, Rule] = {
    INSULIN_ANTIBODY_WORKUP: insulin_antibody_workup,
    ANIMAL_INSULIN_SWITCH: animal_insulin_switch,
    TYPE_B: type_b_insulin_resistance,
    ATAXIA_TELANGIECTASIA: ataxia_telangiectasia_ir,
    GLUCOCORTICOID: glucocorticoid_hyperglycemia,
}

CRITERIA: dict[str, tuple[Criterion, ...]] = {
    INSULIN_ANTIBODY_WORKUP: (
        Criterion("Animal insulin, current or past", "animal_insulin_exposure", "required"),
        *_SIGNS_OF_ANTIBODIES,
    ),
    ANIMAL_INSULIN_SWITCH: (
        Criterion("Current animal insulin", "current_animal_insulin", "required"),
        *(Criterion(c.label, c.finding, "against", c.thresholds) for c in _SIGNS_OF_ANTIBODIES),
    ),
    TYPE_B: (
        Criterion("Insulin-receptor antibody positive (confirms)", "receptor_antibody_positive", "any of"),
        Criterion(
            "Extreme insulin requirement",
            "extreme_requirement",
            "any of",
            ("tdd_extreme", "tdd_extreme_per_kg"),
        ),
        Criterion(
            "Markedly raised insulin level (counts off insulin)",
            "insulin_marked",
            "any of",
            ("insulin_marked",),
        ),
        Criterion(
            "Fasting hypoglycaemia (counts off insulin, with a raised insulin)",
            "fasting_hypoglycaemia",
            "any of",
            ("glucose_fasting_hypo", "glucose_any_hypo"),
        ),
        Criterion("Raised insulin level", "insulin_elevated", "supports", ("insulin_elevated",)),
        Criterion("On insulin", "current_insulin", "supports"),
        Criterion("Autoimmune disease (needed when not confirmed)", "autoimmune_disease", "supports"),
        Criterion("ANA positive", "ana_positive", "supports", ("ana_titre_positive",)),
        Criterion(
            "Insulin-receptor antibody negative",
            "receptor_antibody_negative",
            "against",
            ("receptor_ab_negative_lookback",),
        ),
    ),
    ATAXIA_TELANGIECTASIA: (
        Criterion("Ataxia-telangiectasia", "ataxia_telangiectasia", "required"),
        Criterion(
            "Hyperglycaemia",
            "hyperglycaemia",
            "any of",
            ("glucose_hyper_random", "glucose_hyper_fasting", "ogtt_2h_hyper", "hba1c_hyper"),
        ),
        Criterion("Raised insulin level", "insulin_elevated", "any of", ("insulin_elevated",)),
        Criterion(
            "No glucose or HbA1c within the screening look-back (screening)",
            "glycaemia_tested",
            "any of",
            ("glycaemia_screen_lookback",),
            negate=True,
        ),
    ),
    GLUCOCORTICOID: (
        Criterion("Current systemic glucocorticoid", "current_glucocorticoid", "required"),
        Criterion(
            "Hyperglycaemia",
            "hyperglycaemia",
            "any of",
            ("glucose_hyper_random", "glucose_hyper_fasting", "ogtt_2h_hyper", "hba1c_hyper"),
        ),
        Criterion("Raised insulin level", "insulin_elevated", "any of", ("insulin_elevated",)),
    ),
}

# Which comparison each threshold is used with in ``findings`` (for display only).
_COMPARISON = {
    "glucose_fasting_hypo": "<",
    "glucose_any_hypo": "<",
    "labile_low": "<",
    "labile_high": ">",
    "labile_cv": ">",
    "tdd_extreme": ">",
    "tdd_extreme_per_kg": ">",
    "labile_window": "within",
    "receptor_ab_negative_lookback": "within",
    "glycaemia_screen_lookback": "within",
}


def _threshold_use(x: RuleInput, name: str) -> ThresholdUse:
    threshold = x.knowledge.thresholds[name]
    return ThresholdUse(name, _COMPARISON.get(name, "≥"), threshold.value, threshold.unit)


def _row(x: RuleInput, criterion: Criterion) -> CriterionRow:
    value = getattr(x.findings, criterion.finding)
    present = bool(value)
    values = tuple(e.text for e in value.evidence[:MAX_VALUES]) if isinstance(value, Finding) else ()
    return CriterionRow(
        label=criterion.label,
        role=criterion.role,
        met=present != criterion.negate,
        values=values,
        by_absence=criterion.negate,
        thresholds=tuple(_threshold_use(x, t) for t in criterion.thresholds if t in x.knowledge.thresholds),
    )


def explain(rule_id: str, x: RuleInput) -> Explanation:
    """The criteria of ``rule_id`` against this patient; ``fired`` is the rule's own verdict."""
    if rule_id not in RULES or rule_id not in CRITERIA:
        raise KeyError(f"unknown rule {rule_id!r}")
    result: RuleResult | None = RULES[rule_id](x)
    return Explanation(
        rule_id=rule_id,
        fired=result is not None,
        variant=result.variant if result else None,
        rows=tuple(_row(x, c) for c in CRITERIA[rule_id]),
    )
