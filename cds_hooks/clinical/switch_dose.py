"""How the switch from animal to human insulin is made for this patient, decided once per request.

Reference §5: a dose reduction of about 10–20 %. The smaller cut (porcine, default 10 %) only from
porcine insulin with no antibodies, a moderate total daily dose and no hypoglycaemia risk factor; the
larger one (20 %) from bovine insulin, with positive antibodies, above ``switch_dose_high_tdd`` or with
any risk factor of issue 22 A1 (a recent low, impaired awareness, renal impairment, age, a current
glucocorticoid). While a glucocorticoid with measured hyperglycaemia is current and there is no recent
low, the dose is kept (issue 22 B7: cutting insulin while glucose is high on a steroid contradicts the
steroid card). For a child, a pregnant patient, a patient on dialysis or on an insulin pump no dose is
proposed: a specialist team makes the switch (issue 22 A3).

The cut is applied per administration and rounded: doses below ``switch_half_unit_below`` units to the
half unit below, others to the whole unit below, and a rounding that would cut more than
``switch_rounding_tolerance`` points beyond the target rounds up instead. Cards print the percentage
actually applied. This is reasoning; the order the card proposes is ``cards/switch_order.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cds_hooks.clinical.facts.model import Evidence, MedicationUse, PatientFacts
from cds_hooks.clinical.findings import Finding, Findings
from cds_hooks.clinical.knowledge import Knowledge

PORCINE, BOVINE = "porcine", "bovine"
# The thresholds the sizing of the switch reads (declared with the switch rules, shown on their pages).
THRESHOLDS = (
    "switch_dose_reduction_porcine",
    "switch_dose_reduction_high",
    "switch_dose_high_tdd",
    "switch_dose_reduction_risk",
    "switch_half_unit_below",
    "switch_rounding_tolerance",
    "switch_supervision_days",
)
# The findings the plan reads, in the order the card names them (for the rules' declarations).
RISK_FINDINGS = (
    "recent_level2_hypoglycaemia",
    "recent_hypoglycaemia",
    "impaired_awareness",
    "renal_impairment",
    "older_age",
    "current_glucocorticoid",
)
SPECIALIST_FINDINGS = ("child", "pregnancy", "dialysis", "insulin_pump")
PLAN_FINDINGS = (*RISK_FINDINGS, *SPECIALIST_FINDINGS, "hyperglycaemia", "cgm", "insulin_antibody_positive")
# Insulin profiles by the part of a regimen they cover: basal for basal, prandial for prandial (A5).
COVERS = {
    "long": frozenset({"basal"}),
    "intermediate": frozenset({"basal"}),
    "rapid-short": frozenset({"prandial"}),
    "premixed": frozenset({"basal", "prandial"}),
}


@dataclass(frozen=True)
class Risk:
    """One hypoglycaemia risk factor on the record, with what shows it."""

    name: str  # a key of [switch.risks] in knowledge/cards/_common.toml
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class SwitchPlan:
    """The switch for this patient: how much to cut (or keep, or leave to a specialist team) and why."""

    risks: tuple[Risk, ...]  # hypoglycaemia risk factors (A1), each shown on the card
    specialist: str | None  # "child" | "pregnancy" | "dialysis" | "pump": no dose proposed (A3)
    specialist_evidence: tuple[Evidence, ...]
    keep_dose: bool  # a glucocorticoid with measured hyperglycaemia, no recent low (B7)
    warning: bool  # level-2 hypoglycaemia or impaired awareness: the switch card is a warning (A2)
    cgm: bool  # monitored by CGM rather than capillary glucose (A4)
    antibodies: bool
    high_dose: bool
    tdd: float | None

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """What the card cites for the plan: the group that decides who doses, then each risk."""
        return tuple(dict.fromkeys([*self.specialist_evidence, *(e for r in self.risks for e in r.evidence)]))


@dataclass(frozen=True)
class Reduction:
    percent: float  # the target cut
    reasons: tuple[str, ...]


def _risk(name: str, finding: Finding) -> Risk | None:
    return Risk(name, finding.evidence) if finding else None


def plan_switch(knowledge: Knowledge, facts: PatientFacts, findings: Findings) -> SwitchPlan:
    """The one plan every card that switches insulin follows (issue 22 A1–A5, B7)."""
    f = findings
    risks = [
        r
        for r in (
            _risk("level2", f.recent_level2_hypoglycaemia),
            # a level-2 low is also below level 1: named once
            None if f.recent_level2_hypoglycaemia else _risk("level1", f.recent_hypoglycaemia),
            _risk("impaired_awareness", f.impaired_awareness),
            _risk("renal", f.renal_impairment),
            _risk("older_age", f.older_age),
            _risk("glucocorticoid", f.current_glucocorticoid),
        )
        if r is not None
    ]
    groups = [
        (name, finding)
        for name, finding in (
            ("child", f.child),
            ("pregnancy", f.pregnancy),
            ("dialysis", f.dialysis),
            ("pump", f.insulin_pump),
        )
        if finding
    ]
    keep = bool(f.current_glucocorticoid and f.hyperglycaemia and not f.recent_hypoglycaemia)
    if keep:  # the steroid is why the dose is kept, not a reason to cut it
        risks = [r for r in risks if r.name != "glucocorticoid"]
    tdd, limit = f.total_daily_dose, knowledge.threshold("switch_dose_high_tdd")
    return SwitchPlan(
        risks=tuple(risks),
        specialist=groups[0][0] if groups else None,
        specialist_evidence=tuple(e for _, finding in groups[:1] for e in finding.evidence),
        keep_dose=keep,
        warning=bool(f.recent_level2_hypoglycaemia or f.impaired_awareness),
        cgm=bool(f.cgm),
        antibodies=bool(f.insulin_antibody_positive),
        high_dose=tdd is not None and tdd > limit,
        tdd=tdd,
    )


def reduction(knowledge: Knowledge, plan: SwitchPlan, species: str | None) -> Reduction:
    """The target cut for one animal insulin and every reason that applies (for the order's note)."""
    k, text = knowledge, knowledge.wording.switch.reasons
    if plan.keep_dose:
        return Reduction(0.0, (text["keep"],))
    reasons = [text[species] if species in (PORCINE, BOVINE) else text["unknown_species"]]
    if plan.antibodies:
        reasons.append(text["antibodies"])
    if plan.high_dose and plan.tdd is not None:
        limit = k.threshold("switch_dose_high_tdd")
        reasons.append(text["high_dose"].format(tdd=f"{plan.tdd:g}", limit=f"{limit:g}"))
    reasons += [knowledge.wording.switch.risks[r.name] for r in plan.risks]
    if plan.risks:
        name = "switch_dose_reduction_risk"
    elif species != PORCINE or len(reasons) > 1:
        name = "switch_dose_reduction_high"
    else:
        name = "switch_dose_reduction_porcine"
    return Reduction(percent=k.threshold(name), reasons=tuple(reasons))


def new_dose(knowledge: Knowledge, units: float, percent: float) -> float:
    """``units`` cut by ``percent``: to the half unit below under ``switch_half_unit_below`` units, else
    to the whole unit below; up instead when rounding down would overshoot the target by more than
    ``switch_rounding_tolerance`` points. (Rounding to 6 places first keeps 10 × 0.9 from becoming 8.)"""
    if units <= 0 or percent <= 0:
        return units
    step = 0.5 if units < knowledge.threshold("switch_half_unit_below") else 1.0
    target = round(units * (100 - percent) / 100 / step, 6)
    down = math.floor(target) * step
    if (units - down) / units * 100 > percent + knowledge.threshold("switch_rounding_tolerance"):
        return math.ceil(target) * step
    return down


def applied_percent(units: float, new: float) -> float:
    """The cut actually made, in % of the original dose (what the card prints)."""
    return round((units - new) / units * 100, 1) if units > 0 else 0.0


def covering_insulin(facts: PatientFacts, animal: MedicationUse) -> MedicationUse | None:
    """A current, active human insulin or analogue that already covers what ``animal`` gives (basal for
    basal, prandial for prandial): the switch then adds nothing of that profile (issue 22 A5)."""
    needs = COVERS.get(animal.insulin_profile or "")
    if not needs:
        return None
    human = [m for m in facts.medications if m.current and not m.held and m.insulin and not m.animal_insulin]
    covered: set[str] = set()
    for m in human:
        covered |= COVERS.get(m.insulin_profile or "", frozenset())
    if not needs <= covered:
        return None
    return next(m for m in human if COVERS.get(m.insulin_profile or "", frozenset()) & needs)
