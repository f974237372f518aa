"""Why a rule did or did not fire, criterion by criterion: for the "why this card" table.

Each rule declares its criteria here, next to the rules: which finding (``clinical.findings``) each
criterion is, how the criteria combine, and which thresholds it compares against. Whether a criterion
is met is read from the very ``Findings`` object the card was built from (or, for what the rules read
from the facts — trigger drugs, pending tests — from the same ``PatientFacts``), and whether the rule
fired is the rule function's own answer — this module never re-implements a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cds_hooks.clinical.findings import Finding
from cds_hooks.clinical.rules import (
    ANIMAL_INSULIN_SWITCH,
    ATAXIA_TELANGIECTASIA,
    GLUCOCORTICOID,
    INSULIN_ANTIBODY_WORKUP,
    INSULIN_AUTOIMMUNE_SYNDROME,
    SCREENING,
    TYPE_B,
    Rule,
    RuleInput,
    RuleResult,
    animal_insulin_switch,
    ataxia_telangiectasia_ir,
    glucocorticoid_hyperglycemia,
    insulin_antibody_workup,
    insulin_autoimmune_syndrome,
    type_b_insulin_resistance,
)

MAX_VALUES = 3  # evidence lines shown per criterion


@dataclass(frozen=True)
class Criterion:
    """One criterion of a rule: what it reads, its role, and the thresholds it compares against.

    It reads a finding (an attribute of ``Findings``) or, for what the rules read straight from the
    facts, a medication flag (``MedicationUse``) or the pending tests of a workup."""

    label: str
    finding: str = ""  # attribute of ``Findings``
    role: str = "required"  # "required" | "any of" | "supports" | "against"
    thresholds: tuple[str, ...] = ()
    negate: bool = False  # the criterion is met when the finding is absent
    medication_flag: str = ""  # attribute of ``MedicationUse``: met when a medication on the record has it
    pending: tuple[str, ...] = ()  # workup tests (knowledge/workup.toml): met when one is pending
    amount: str = ""  # a number of ``Findings`` shown with the values while the finding is present
    amount_unit: str = ""
    rule: str = ""  # another rule (``RULES``): met when that rule fires, by its own verdict


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


_LABILE = Criterion(
    "Labile glucose (low and high within the window, or high variability)",
    "labile_glucose",
    "any of",
    ("labile_low", "labile_high", "labile_window", "labile_cv"),
)
_EXTREME = Criterion(
    "Extreme insulin requirement", "extreme_requirement", "any of", ("tdd_extreme", "tdd_extreme_per_kg")
)
_MARKED = Criterion("Markedly raised insulin level", "insulin_marked", "any of", ("insulin_marked",))
_HYPERGLYCAEMIA = Criterion(
    "Hyperglycaemia, measured (glucose, fasting glucose, OGTT or HbA1c)",
    "hyperglycaemia",
    "any of",
    ("glucose_hyper_random", "glucose_hyper_fasting", "ogtt_2h_hyper", "hba1c_hyper"),
)
_INSULIN_ELEVATED = Criterion("Raised insulin level", "insulin_elevated", "any of", ("insulin_elevated",))
_FASTING_HYPO = ("glucose_fasting_hypo", "glucose_any_hypo")

# Signs of antibody-mediated resistance; a positive insulin antibody alone is not one (issue 14 item 8).
_SIGNS_OF_ANTIBODIES = (_LABILE, _EXTREME, _MARKED)

RULES: dict[str, Rule] = {
    INSULIN_ANTIBODY_WORKUP: insulin_antibody_workup,
    ANIMAL_INSULIN_SWITCH: animal_insulin_switch,
    TYPE_B: type_b_insulin_resistance,
    INSULIN_AUTOIMMUNE_SYNDROME: insulin_autoimmune_syndrome,
    ATAXIA_TELANGIECTASIA: ataxia_telangiectasia_ir,
    GLUCOCORTICOID: glucocorticoid_hyperglycemia,
}

CRITERIA: dict[str, tuple[Criterion, ...]] = {
    INSULIN_ANTIBODY_WORKUP: (
        Criterion(
            "Animal insulin, current or ended within the exposure window (undated past use does not count)",
            "animal_insulin_exposure",
            "required",
            ("animal_insulin_past_years",),
        ),
        *_SIGNS_OF_ANTIBODIES,
        Criterion(
            "Insulin antibody positive (makes it likely; alone not a sign)",
            "insulin_antibody_positive",
            "supports",
        ),
    ),
    ANIMAL_INSULIN_SWITCH: (
        Criterion("Current animal insulin", "current_animal_insulin", "required"),
        *(replace(c, role="against") for c in _SIGNS_OF_ANTIBODIES),
        Criterion(
            "Insulin antibody positive (listed; alone not a sign of resistance)",
            "insulin_antibody_positive",
            "supports",
        ),
    ),
    TYPE_B: (
        Criterion("Insulin-receptor antibody positive (confirms)", "receptor_antibody_positive", "any of"),
        replace(_EXTREME, label="Extreme insulin requirement (on insulin, with a supporting feature)"),
        replace(_MARKED, label="Markedly raised insulin level (counts off insulin)"),
        Criterion(
            "Fasting hypoglycaemia or any glucose below the level-2 limit (counts off insulin, with a raised"
            " insulin)",
            "fasting_hypoglycaemia",
            "any of",
            _FASTING_HYPO,
        ),
        Criterion(
            "Supporting feature on insulin: high dose per kg, fasting hypoglycaemia, acanthosis nigricans"
            " or BMI below the limit (needed with an extreme requirement)",
            "type_b_support",
            "supports",
            ("tdd_type_b_support_per_kg", *_FASTING_HYPO, "bmi_type_b_support"),
        ),
        replace(_INSULIN_ELEVATED, role="supports"),
        Criterion("On insulin", "current_insulin", "supports"),
        Criterion(
            "Autoimmune disease (autoimmunity, needed when not confirmed)", "autoimmune_disease", "supports"
        ),
        Criterion(
            "ANA at the type B titre or positive without titre (autoimmunity)",
            "ana_type_b",
            "supports",
            ("ana_titre_type_b",),
        ),
        Criterion(
            "Insulin-receptor antibody negative",
            "receptor_antibody_negative",
            "against",
            ("receptor_ab_negative_lookback",),
        ),
        Criterion(
            "Insulin autoimmune syndrome explains the raised insulin (its card is shown instead)",
            role="against",
            rule=INSULIN_AUTOIMMUNE_SYNDROME,
        ),
    ),
    INSULIN_AUTOIMMUNE_SYNDROME: (
        Criterion("Insulin antibody positive", "insulin_antibody_positive", "required"),
        Criterion("Never on any insulin", "insulin_ever", "required", negate=True),
        Criterion(
            "Fasting hypoglycaemia or any glucose below the level-2 limit",
            "fasting_hypoglycaemia",
            "any of",
            _FASTING_HYPO,
        ),
        _MARKED,
        Criterion(
            "A known trigger drug on the record (sulfhydryl group)",
            role="supports",
            medication_flag="insulin_autoimmune_trigger",
        ),
    ),
    ATAXIA_TELANGIECTASIA: (
        Criterion("Ataxia-telangiectasia", "ataxia_telangiectasia", "required"),
        _HYPERGLYCAEMIA,
        Criterion("Diabetes on the record", "diabetes", "any of"),
        _INSULIN_ELEVATED,
        Criterion(
            "No glucose or HbA1c within the screening look-back (screening)",
            "glycaemia_tested",
            "any of",
            ("glycaemia_screen_lookback",),
            negate=True,
        ),
        Criterion("Glucose or HbA1c test pending (no screening card)", role="against", pending=SCREENING),
    ),
    GLUCOCORTICOID: (
        Criterion(
            "Current systemic glucocorticoid",
            "current_glucocorticoid",
            "required",
            amount="glucocorticoid_prednisolone_mg",
            amount_unit="mg/day prednisolone equivalent",
        ),
        _HYPERGLYCAEMIA,
        _INSULIN_ELEVATED,
        Criterion(
            "Adrenal insufficiency with a replacement dose (no card; an unknown dose fires)",
            "adrenal_insufficiency",
            "against",
            ("glucocorticoid_replacement_max",),
            amount="glucocorticoid_prednisolone_mg",
            amount_unit="mg/day prednisolone equivalent",
        ),
    ),
}

# Which comparison each threshold is used with in ``findings`` and the rules (for display only).
_COMPARISON = {
    "glucose_fasting_hypo": "<",
    "glucose_any_hypo": "<",
    "labile_low": "<",
    "labile_high": ">",
    "labile_cv": ">",
    "tdd_extreme": ">",
    "tdd_extreme_per_kg": ">",
    "bmi_type_b_support": "<",
    "glucocorticoid_replacement_max": "≤",
    "labile_window": "within",
    "receptor_ab_negative_lookback": "within",
    "glycaemia_screen_lookback": "within",
    "animal_insulin_past_years": "within",
}


def _threshold_use(x: RuleInput, name: str) -> ThresholdUse:
    threshold = x.knowledge.thresholds[name]
    return ThresholdUse(name, _COMPARISON.get(name, "≥"), threshold.value, threshold.unit)


def _read(x: RuleInput, criterion: Criterion) -> tuple[bool, tuple[str, ...]]:
    """Whether what the criterion reads is there, and the patient's values (evidence lines)."""
    if criterion.rule:
        result = RULES[criterion.rule](x)
        return result is not None, tuple(e.text for e in result.evidence) if result else ()
    if criterion.medication_flag:
        meds = [m for m in x.facts.medications if getattr(m, criterion.medication_flag)]
        return bool(meds), tuple(dict.fromkeys(m.evidence.text for m in meds))
    if criterion.pending:
        kinds = [
            k for t in criterion.pending if (test := x.knowledge.workup.get(t)) for k in test.satisfied_by
        ]
        waiting = [p for k in kinds for p in x.facts.pending.get(k, [])]
        return bool(waiting), tuple(dict.fromkeys(p.evidence.text for p in waiting))
    value = getattr(x.findings, criterion.finding)
    values = tuple(e.text for e in value.evidence) if isinstance(value, Finding) else ()
    if criterion.amount and value:
        amount = getattr(x.findings, criterion.amount)
        shown = f"{amount:.3g}" if amount is not None else "unknown"
        values = (*values, f"Total {shown} {criterion.amount_unit}".strip())
    return bool(value), values


def _row(x: RuleInput, criterion: Criterion) -> CriterionRow:
    present, values = _read(x, criterion)
    if len(values) > MAX_VALUES and criterion.amount:
        values = (*values[: MAX_VALUES - 1], values[-1])  # the total is always shown
    return CriterionRow(
        label=criterion.label,
        role=criterion.role,
        met=present != criterion.negate,
        values=values[:MAX_VALUES],
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
