"""Why a rule did or did not fire, criterion by criterion: for the "why this card" table.

The criteria are the rule's own declaration (``clinical/rules/<rule>.py``). Whether a criterion is met
is read from the very ``Findings`` object the card was built from (or, for what the rules read from the
facts — trigger drugs, pending tests — from the same ``PatientFacts``), and whether the rule fired is the
rule function's own answer: this module never re-implements a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from cds_hooks.clinical.findings import Finding
from cds_hooks.clinical.rules import RULES_BY_ID, Criterion, RuleInput, RuleResult

MAX_VALUES = 3  # evidence lines shown per criterion


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


# Which comparison each threshold is used with in ``findings`` and the rules (for display only; "≥" when
# not listed).
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
        result = RULES_BY_ID[criterion.rule].evaluate(x)
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
        shown = _amount(amount) if amount is not None else "unknown"
        values = (*values, f"Total {shown} {criterion.amount_unit}".strip())
    return bool(value), values


def _amount(value: float) -> str:
    """At most one decimal and never exponent notation ("1250", not "1.25e+03")."""
    text = f"{round(value, 1):.1f}"
    return text[:-2] if text.endswith(".0") else text


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
    if rule_id not in RULES_BY_ID:
        raise KeyError(f"unknown rule {rule_id!r}")
    rule = RULES_BY_ID[rule_id]
    result: RuleResult | None = rule.evaluate(x)
    return Explanation(
        rule_id=rule_id,
        fired=result is not None,
        variant=result.variant if result else None,
        rows=tuple(_row(x, c) for c in rule.criteria),
    )
