"""Derived findings over patient facts, each with the evidence that made it true.

Thresholds come from ``knowledge/thresholds.toml``; the comparisons here (≥ or >) follow the issue's
definitions, and their edges are covered by the vignette tests.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, timedelta

from cds_hooks.clinical.facts.model import ConditionFact, Evidence, LabResult, MedicationUse, PatientFacts
from cds_hooks.clinical.knowledge import Knowledge

GLUCOSE_KINDS = ("glucose", "glucose_fasting")

# What each finding compares against: the thresholds (knowledge/thresholds.toml) its function below reads,
# with those of the facts it rests on (an ANA is "positive" at ``ana_titre_positive``). Told once, here:
# the "why this card" table, every rule's page and the thresholds required at start derive from it, and
# tests/clinical/test_rule_declarations.py reads each function's code to hold this table to it.
THRESHOLDS_READ: dict[str, tuple[str, ...]] = {
    "hyperglycaemia": ("glucose_hyper_random", "glucose_hyper_fasting", "ogtt_2h_hyper", "hba1c_hyper"),
    "fasting_hypoglycaemia": ("glucose_fasting_hypo", "glucose_any_hypo"),
    "labile_glucose": ("labile_window", "labile_low", "labile_high", "labile_cv_min_readings", "labile_cv"),
    "insulin_elevated": ("insulin_elevated",),
    "insulin_marked": ("insulin_marked",),
    "extreme_requirement": ("tdd_extreme", "tdd_extreme_per_kg"),
    "ana_positive": ("ana_titre_positive",),
    "ana_type_b": ("ana_titre_positive", "ana_titre_type_b"),
    "type_b_support": (
        "tdd_type_b_support_per_kg", "glucose_fasting_hypo", "glucose_any_hypo", "bmi_type_b_support",
        "tg_type_b_support", "shbg_type_b_high", "adiponectin_type_b_high",
    ),
    "insulin_c_peptide_ratio": ("insulin_c_peptide_ratio_high",),
    "animal_insulin_exposure": ("animal_insulin_past_years",),
    "glycaemia_tested": ("glycaemia_screen_lookback",),
    # the switch's hypoglycaemia risk factors and the groups it must not dose (issue 22 A1, A3)
    "recent_hypoglycaemia": ("hypo_risk_recent_days", "hypo_risk_level1"),
    "recent_level2_hypoglycaemia": ("hypo_risk_recent_days", "hypo_risk_level2"),
    "renal_impairment": ("egfr_low",),
    "older_age": ("age_older",),
    "child": ("age_adult",),
}  # fmt: skip
# Thresholds the facts apply to every result of a lab kind (tests/clinical/test_rule_declarations.py).
LAB_THRESHOLDS: dict[str, tuple[str, ...]] = {"ana": ("ana_titre_positive",)}


@dataclass(frozen=True)
class Finding:
    present: bool
    evidence: tuple[Evidence, ...] = ()

    def __bool__(self) -> bool:
        return self.present


ABSENT = Finding(False)


def found(evidence: list[Evidence] | tuple[Evidence, ...]) -> Finding:
    return Finding(True, tuple(dict.fromkeys(evidence)))


@dataclass(frozen=True)
class Findings:
    hyperglycaemia: Finding  # measured: glucose, fasting glucose, OGTT or HbA1c at or above its threshold
    diabetes: Finding  # a diabetes diagnosis on the record (not a measurement)
    fasting_hypoglycaemia: Finding
    labile_glucose: Finding
    insulin_elevated: Finding
    insulin_marked: Finding
    extreme_requirement: Finding
    autoimmune_disease: Finding
    ana_positive: Finding  # positive by the general ANA threshold (1:80)
    ana_type_b: (
        Finding  # ANA that counts as autoimmunity for type B: titre >= 1:160, or positive without titre
    )
    # A feature of type B that obesity does not explain (issue 22 D10): >= 3 U/kg/day, fasting
    # hypoglycaemia, BMI < 30 (with acanthosis nigricans cited beside it), triglycerides < 150 mg/dL, high
    # SHBG or adiponectin. Obesity, PCOS or type 2 diabetes never make one.
    type_b_support: Finding
    insulin_antibody_positive: Finding
    receptor_antibody_positive: Finding
    receptor_antibody_negative: Finding
    current_animal_insulin: Finding
    animal_insulin_exposure: Finding  # current, or past that ended within animal_insulin_past_years
    current_insulin: Finding
    insulin_ever: Finding  # any insulin use on the record, current or past (entered-in-error never counts)
    current_glucocorticoid: Finding
    # Adrenal insufficiency, primary or secondary (hypopituitarism): glucocorticoid replacement is expected.
    adrenal_insufficiency: Finding
    ataxia_telangiectasia: Finding
    glycaemia_tested: bool  # any glucose or HbA1c, of any value, within the screening lookback
    total_daily_dose: float | None
    # Prednisolone-equivalent mg/day summed over current systemic glucocorticoids; None when any dose
    # is unknown (or there is none).
    glucocorticoid_prednisolone_mg: float | None = None
    other_causes: tuple[Evidence, ...] = field(default_factory=tuple)
    # Hypoglycaemia risk on switching (issue 22 A1): each one makes the larger cut.
    recent_hypoglycaemia: Finding = ABSENT  # a glucose < level 1 within the recent days
    recent_level2_hypoglycaemia: Finding = ABSENT  # < level 2: the switch card becomes a warning
    impaired_awareness: Finding = ABSENT  # impaired awareness of hypoglycaemia: a warning too
    renal_impairment: Finding = ABSENT  # eGFR below the limit, CKD stage 4–5 or dialysis
    older_age: Finding = ABSENT
    # Groups whose switch a specialist team doses (issue 22 A3): no dose is proposed.
    child: Finding = ABSENT
    pregnancy: Finding = ABSENT
    dialysis: Finding = ABSENT
    insulin_pump: Finding = ABSENT  # a pump Device, or an insulin given as a rate
    cgm: Finding = ABSENT  # a CGM Device or CGM readings: the switch is monitored by CGM (A4)
    # Issue 22 D11: a current sulfonylurea or meglitinide, or a positive hypoglycaemic agent screen.
    secretagogue: Finding = field(default_factory=lambda: ABSENT)
    # The newest insulin and C-peptide of one sample with their molar ratio (an Evidence note); present
    # whenever such a pair is on record, whatever the ratio (the note says what a ratio above 1 suggests).
    insulin_c_peptide_ratio: Finding = field(default_factory=lambda: ABSENT)


def _glucose(facts: PatientFacts) -> list[LabResult]:
    readings = [r for k in GLUCOSE_KINDS for r in facts.lab(k) if r.value is not None]
    return sorted(readings, key=lambda r: r.when)


def _values_at_least(results: list[LabResult], threshold: float) -> list[Evidence]:
    return [r.evidence for r in results if r.value is not None and r.value >= threshold]


def hyperglycaemia(facts: PatientFacts, k: Knowledge) -> Finding:
    evidence = _values_at_least(facts.lab("glucose"), k.threshold("glucose_hyper_random"))
    evidence += _values_at_least(facts.lab("glucose_fasting"), k.threshold("glucose_hyper_fasting"))
    evidence += _values_at_least(facts.lab("ogtt_2h"), k.threshold("ogtt_2h_hyper"))
    evidence += _values_at_least(facts.lab("hba1c"), k.threshold("hba1c_hyper"))
    return found(evidence) if evidence else ABSENT


def fasting_hypoglycaemia(facts: PatientFacts, k: Knowledge) -> Finding:
    fasting_low = k.threshold("glucose_fasting_hypo")
    any_low = k.threshold("glucose_any_hypo")
    evidence = [
        r.evidence for r in facts.lab("glucose_fasting") if r.value is not None and r.value < fasting_low
    ]
    evidence += [r.evidence for r in _glucose(facts) if r.value is not None and r.value < any_low]
    return found(evidence) if evidence else ABSENT


def labile_glucose(facts: PatientFacts, k: Knowledge) -> Finding:
    """A low and a high within one window, or a coefficient of variation above the limit over enough
    readings in one window (sample standard deviation / mean)."""
    window = timedelta(days=k.threshold("labile_window"))
    low, high = k.threshold("labile_low"), k.threshold("labile_high")
    readings = _glucose(facts)
    lows = [r for r in readings if r.value is not None and r.value < low]
    highs = [r for r in readings if r.value is not None and r.value > high]
    for lo in lows:
        for hi in highs:
            if abs(lo.when - hi.when) <= window:
                return found([lo.evidence, hi.evidence])
    min_n = int(k.threshold("labile_cv_min_readings"))
    limit = k.threshold("labile_cv")
    for i, start in enumerate(readings):
        span = [r for r in readings[i:] if r.when - start.when <= window]
        if len(span) < min_n:
            continue
        values = [float(r.value) for r in span if r.value is not None]
        mean = statistics.fmean(values)
        if mean > 0:
            cv = statistics.stdev(values) / mean * 100
            if cv > limit:
                first, last = span[0], span[-1]
                note = Evidence(
                    reference="",
                    text=f"Glucose coefficient of variation {cv:.0f}% over "
                    f"{len(span)} readings from {first.when.date()} to {last.when.date()}",
                )
                return found([note])
    return ABSENT


def _max_insulin(facts: PatientFacts) -> LabResult | None:
    values = [r for r in facts.lab("insulin") if r.value is not None]
    return max(values, key=lambda r: r.value or 0.0) if values else None


def insulin_elevated(facts: PatientFacts, k: Knowledge) -> Finding:
    top = _max_insulin(facts)
    if top is None or top.value is None or top.value < k.threshold("insulin_elevated"):
        return ABSENT
    return found([top.evidence])


def insulin_marked(facts: PatientFacts, k: Knowledge) -> Finding:
    top = _max_insulin(facts)
    if top is None or top.value is None or top.value < k.threshold("insulin_marked"):
        return ABSENT
    return found([top.evidence])


def extreme_dose(units: float, weight_kg: float | None, k: Knowledge) -> tuple[bool, bool]:
    """(above the daily limit, above the limit per kg): the one comparison of an extreme insulin
    requirement, for the patient's total daily dose and for a draft order's dose alike."""
    per_kg = bool(weight_kg) and units / (weight_kg or 1.0) > k.threshold("tdd_extreme_per_kg")
    return units > k.threshold("tdd_extreme"), per_kg


def extreme_requirement(
    facts: PatientFacts, k: Knowledge, tdd: float | None, doses: list[MedicationUse]
) -> Finding:
    """The total daily insulin dose above the daily limit or the limit per kg of the latest weight."""
    if tdd is None:
        return ABSENT
    weight = facts.latest_weight_kg
    over, per_kg = extreme_dose(tdd, weight.value if weight is not None else None, k)
    extreme: list[Evidence] = []
    if over:
        extreme = [
            *(m.evidence for m in doses),
            Evidence(
                "",
                f"Total daily insulin dose {tdd:g} U/day (extreme: > {k.threshold('tdd_extreme'):g})",
            ),
        ]
    if per_kg and weight is not None and weight.value:
        extreme = [
            *(m.evidence for m in doses),
            weight.evidence,
            Evidence("", f"Total daily insulin {tdd:g} U = {tdd / weight.value:.2f} U/kg/day"),
        ]
    return found(extreme) if extreme else ABSENT


def glycaemia_tested(facts: PatientFacts, k: Knowledge) -> bool:
    """Any glucose or HbA1c, of any value, within the screening look-back."""
    since = facts.now - timedelta(days=k.threshold("glycaemia_screen_lookback"))
    return any(
        when >= since
        for kind, when in facts.last_result.items()
        if kind in ("glucose", "glucose_fasting", "ogtt_2h", "hba1c")
    )


def ana_positive(facts: PatientFacts, k: Knowledge) -> Finding:
    """The newest ANA with a verdict is positive (a titre at ``ana_titre_positive``, read with the facts)."""
    ana = _newest_verdict(facts.lab("ana"))
    return found([ana.evidence]) if ana and ana.positive else ABSENT


def _newest_verdict(results: list[LabResult]) -> LabResult | None:
    """The newest result that says positive or negative (newest wins when results disagree)."""
    return next((r for r in results if r.positive is not None), None)


def _current(meds: list[MedicationUse], attr: str) -> list[Evidence]:
    return [m.evidence for m in meds if m.current and getattr(m, attr)]


def _conditions(conditions: list[ConditionFact], groups: frozenset[str] | set[str]) -> list[Evidence]:
    return [c.evidence for c in conditions if c.groups & groups]


def _years_before(day: date, years: float) -> date:
    """The calendar day ``years`` before ``day`` (29 February → 28 February); a fractional part in days."""
    whole = int(years)
    try:
        back = day.replace(year=day.year - whole)
    except ValueError:
        back = day.replace(year=day.year - whole, day=28)
    return back - timedelta(days=round((years - whole) * 365.25))


def animal_insulin_exposure(facts: PatientFacts, k: Knowledge) -> Finding:
    """Current animal insulin, or past animal insulin that ended within ``animal_insulin_past_years``.
    A past use with no end date at all does not count (issue 14 item 7)."""
    since = _years_before(facts.now.date(), k.threshold("animal_insulin_past_years"))
    evidence = [
        m.evidence
        for m in facts.medications
        if m.animal_insulin and (m.current or (m.past and m.ended is not None and m.ended >= since))
    ]
    return _finding(evidence)


def ana_type_b(facts: PatientFacts, k: Knowledge) -> Finding:
    """The newest ANA with a verdict counts for type B at a titre >= ``ana_titre_type_b`` or when it is
    positive without a titre (reference §1e: 1:80 is common in healthy people)."""
    ana = _newest_verdict(facts.lab("ana"))
    if ana is None or not ana.positive:
        return ABSENT
    if ana.titre is not None and ana.titre < k.threshold("ana_titre_type_b"):
        return ABSENT
    return found([ana.evidence])


def _newest(facts: PatientFacts, kind: str) -> LabResult | None:
    return next((r for r in facts.lab(kind) if r.value is not None), None)


def _high(result: LabResult | None, threshold: float) -> bool:
    """Flagged high by the laboratory (interpretation H, or above its reference range), or, without a
    flag, at or above ``threshold``; a result flagged normal or low is not high."""
    if result is None or result.value is None:
        return False
    if result.positive is not None:
        return result.positive
    return result.value >= threshold


def type_b_support(facts: PatientFacts, k: Knowledge, tdd: float | None) -> Finding:
    """Features of type B that obesity does not explain (issue 22 D10; Semple RK et al., Endocr Rev
    2011;32:498-514: receptor-level resistance spares lipids, SHBG and adiponectin): a daily dose
    >= 3 U/kg/day, fasting hypoglycaemia, the newest BMI below 30 within its window (acanthosis
    nigricans is cited with it and never alone), the newest triglycerides below 150 mg/dL, or the newest
    SHBG or adiponectin high. Obesity, PCOS or type 2 diabetes on the record are never a feature."""
    evidence: list[Evidence] = []
    weight = facts.latest_weight_kg
    if tdd is not None and weight is not None and weight.value:
        per_kg = tdd / weight.value
        if per_kg >= k.threshold("tdd_type_b_support_per_kg"):
            evidence += [
                weight.evidence,
                Evidence("", f"Total daily insulin {tdd:g} U = {per_kg:.2f} U/kg/day"),
            ]
    evidence += fasting_hypoglycaemia(facts, k).evidence
    bmi = _newest(facts, "bmi")
    if bmi is not None and bmi.value is not None and bmi.value < k.threshold("bmi_type_b_support"):
        evidence.append(bmi.evidence)
        evidence += _conditions(facts.conditions, {"acanthosis-nigricans"})
    tg = _newest(facts, "triglycerides")
    if tg is not None and tg.value is not None and tg.value < k.threshold("tg_type_b_support"):
        evidence.append(tg.evidence)
    shbg = _newest(facts, "shbg")
    if _high(shbg, k.threshold("shbg_type_b_high")) and shbg is not None:
        evidence.append(shbg.evidence)
    adiponectin = _newest(facts, "adiponectin")
    if _high(adiponectin, k.threshold("adiponectin_type_b_high")) and adiponectin is not None:
        evidence.append(adiponectin.evidence)
    return _finding(evidence)


# Insulin µIU/mL and C-peptide ng/mL to pmol/L: the factors of knowledge/labs.toml's pmol/L rows
# (insulin pmol/L ÷ 6.00 = µIU/mL, Vølund 1993; C-peptide pmol/L ÷ 331 = ng/mL, ARUP).
RATIO_UNIT = "pmol/L"


def _to_pmol(k: Knowledge, kind: str, canonical: float) -> float | None:
    conversion = k.labs[kind].units.get(RATIO_UNIT)
    if conversion is None or not conversion.factor:
        return None
    return (canonical - conversion.offset) / conversion.factor


def insulin_c_peptide_ratio(facts: PatientFacts, k: Knowledge) -> Finding:
    """The newest insulin and C-peptide drawn at the same time (one sample) and their molar ratio,
    insulin pmol/L ÷ C-peptide pmol/L (issue 22 D11). The note says what a ratio above
    ``insulin_c_peptide_ratio_high`` suggests: exogenous insulin or antibody-bound insulin."""
    peptides = {r.when: r for r in facts.lab("c_peptide") if r.value}
    for insulin in facts.lab("insulin"):
        peptide = peptides.get(insulin.when)
        if insulin.value is None or peptide is None or peptide.value is None:
            continue
        insulin_pmol = _to_pmol(k, "insulin", insulin.value)
        peptide_pmol = _to_pmol(k, "c_peptide", peptide.value)
        if insulin_pmol is None or not peptide_pmol:
            continue
        ratio = insulin_pmol / peptide_pmol
        limit = k.threshold("insulin_c_peptide_ratio_high")
        meaning = (
            f"above {limit:g}: suggests exogenous or antibody-bound insulin, "
            "as in insulin autoimmune syndrome"
            if ratio > limit
            else f"not above {limit:g}: C-peptide matches the insulin (endogenous secretion)"
        )
        note = Evidence(
            "",
            f"Insulin:C-peptide molar ratio {ratio:.1f} (insulin {insulin_pmol:.0f} pmol/L ÷ C-peptide "
            f"{peptide_pmol:.0f} pmol/L, same sample), {meaning}",
        )
        return found([insulin.evidence, peptide.evidence, note])
    return ABSENT


def secretagogue(facts: PatientFacts) -> Finding:
    """A current sulfonylurea or meglitinide, or the newest hypoglycaemic agent screen positive: the
    hypoglycaemia may be the drug's (Cryer PE et al., JCEM 2009;94:709-28)."""
    evidence = _current(facts.medications, "insulin_secretagogue")
    screen = _newest_verdict(facts.lab("sulfonylurea_screen"))
    if screen is not None and screen.positive:
        evidence.append(screen.evidence)
    return _finding(evidence)


def recent_hypoglycaemia(facts: PatientFacts, k: Knowledge) -> Finding:
    """Any glucose (laboratory, capillary or CGM) below level 1 within the recent days."""
    return _recent_lows(facts, k, k.threshold("hypo_risk_level1"))


def recent_level2_hypoglycaemia(facts: PatientFacts, k: Knowledge) -> Finding:
    """Any glucose below level 2 (clinically significant) within the recent days."""
    return _recent_lows(facts, k, k.threshold("hypo_risk_level2"))


def _recent_lows(facts: PatientFacts, k: Knowledge, limit: float) -> Finding:
    since = facts.now - timedelta(days=k.threshold("hypo_risk_recent_days"))
    lows = [
        r.evidence
        for kind in (*GLUCOSE_KINDS, "cgm_glucose")
        for r in facts.lab(kind)
        if r.value is not None and r.value < limit and r.when >= since
    ]
    return _finding(lows)


def renal_impairment(facts: PatientFacts, k: Knowledge) -> Finding:
    """The newest eGFR below the limit (within its look-back), CKD stage 4–5 or dialysis on the record."""
    newest = next((r for r in facts.lab("egfr") if r.value is not None), None)
    evidence = (
        [newest.evidence]
        if newest and newest.value is not None and newest.value < k.threshold("egfr_low")
        else []
    )
    evidence += _conditions(facts.conditions, {"ckd-severe", "dialysis"})
    return _finding(evidence)


def _age_evidence(facts: PatientFacts) -> tuple[int, Evidence] | None:
    if facts.patient is None:
        return None
    age = facts.patient.age(facts.now.date())
    born = facts.patient.birth_date.isoformat()
    return age, Evidence(facts.patient.evidence.reference, f"Age {age} (born {born})", fact=facts.patient)


def older_age(facts: PatientFacts, k: Knowledge) -> Finding:
    aged = _age_evidence(facts)
    return found([aged[1]]) if aged and aged[0] >= k.threshold("age_older") else ABSENT


def child(facts: PatientFacts, k: Knowledge) -> Finding:
    aged = _age_evidence(facts)
    return found([aged[1]]) if aged and aged[0] < k.threshold("age_adult") else ABSENT


def pregnancy(facts: PatientFacts) -> Finding:
    """An active pregnancy Condition, or a positive pregnancy status within its look-back (280 days)."""
    evidence = _conditions(facts.conditions, {"pregnancy-current"})
    status = _newest_verdict(facts.lab("pregnancy_status"))
    if status is not None and status.positive:
        evidence.append(status.evidence)
    return _finding(evidence)


def insulin_pump(facts: PatientFacts) -> Finding:
    devices = [d.evidence for d in facts.devices if d.kind == "insulin-pump"]
    return _finding([*devices, *(m.evidence for m in facts.medications if m.current and m.pump)])


def cgm(facts: PatientFacts) -> Finding:
    readings = facts.lab("cgm_glucose")[:1]
    return _finding(
        [*(d.evidence for d in facts.devices if d.kind == "cgm-device"), *(r.evidence for r in readings)]
    )


def prednisolone_total(uses: list[MedicationUse] | tuple[MedicationUse, ...]) -> float | None:
    """Prednisolone-equivalent mg/day summed over ``uses``; None when there is none or any dose is
    unknown (a partial sum would understate the dose)."""
    if not uses or any(m.prednisolone_mg is None for m in uses):
        return None
    return sum(m.prednisolone_mg or 0.0 for m in uses)


def _prednisolone_total(facts: PatientFacts) -> float | None:
    return prednisolone_total([m for m in facts.medications if m.current and m.systemic_glucocorticoid])


# Condition value sets treated with glucocorticoid replacement when knowledge/conditions.toml names none.
REPLACEMENT_CONDITIONS = frozenset({"adrenal-insufficiency", "hypopituitarism"})


def derive(facts: PatientFacts, k: Knowledge) -> Findings:
    current_insulins = [m for m in facts.medications if m.current and m.insulin]
    # An on-hold order is listed but is not the current dose (issue 22 A5).
    doses = [m for m in current_insulins if m.daily_units is not None and not m.held]
    tdd = sum(m.daily_units or 0.0 for m in doses) if doses else None
    iaa = _newest_verdict(facts.lab("insulin_antibody"))
    receptor = _newest_verdict(facts.lab("insulin_receptor_antibody"))

    other: list[Evidence] = []
    for cause in k.other_causes:
        if cause.valueset:
            other += _conditions(facts.conditions, {cause.valueset})
        elif cause.medication == "glucocorticoid-systemic":
            other += _current(facts.medications, "systemic_glucocorticoid")

    fasting_hypo = fasting_hypoglycaemia(facts, k)
    return Findings(
        hyperglycaemia=hyperglycaemia(facts, k),
        diabetes=_finding(_conditions(facts.conditions, {"diabetes"})),
        fasting_hypoglycaemia=fasting_hypo,
        labile_glucose=labile_glucose(facts, k),
        insulin_elevated=insulin_elevated(facts, k),
        insulin_marked=insulin_marked(facts, k),
        extreme_requirement=extreme_requirement(facts, k, tdd, doses),
        autoimmune_disease=_finding(_conditions(facts.conditions, k.autoimmune_groups)),
        ana_positive=ana_positive(facts, k),
        ana_type_b=ana_type_b(facts, k),
        type_b_support=type_b_support(facts, k, tdd),
        insulin_antibody_positive=found([iaa.evidence]) if iaa and iaa.positive else ABSENT,
        receptor_antibody_positive=found([receptor.evidence]) if receptor and receptor.positive else ABSENT,
        receptor_antibody_negative=found([receptor.evidence])
        if receptor and receptor.positive is False
        else ABSENT,
        current_animal_insulin=_finding(_current(facts.medications, "animal_insulin")),
        animal_insulin_exposure=animal_insulin_exposure(facts, k),
        current_insulin=_finding([m.evidence for m in current_insulins]),
        insulin_ever=_finding([m.evidence for m in facts.medications if m.insulin]),
        current_glucocorticoid=_finding(_current(facts.medications, "systemic_glucocorticoid")),
        adrenal_insufficiency=_finding(
            _conditions(facts.conditions, k.groups.get("glucocorticoid_replacement", REPLACEMENT_CONDITIONS))
        ),
        ataxia_telangiectasia=_finding(_conditions(facts.conditions, {"ataxia-telangiectasia"})),
        glycaemia_tested=glycaemia_tested(facts, k),
        total_daily_dose=tdd,
        glucocorticoid_prednisolone_mg=_prednisolone_total(facts),
        other_causes=tuple(dict.fromkeys(other)),
        recent_hypoglycaemia=recent_hypoglycaemia(facts, k),
        recent_level2_hypoglycaemia=recent_level2_hypoglycaemia(facts, k),
        impaired_awareness=_finding(_conditions(facts.conditions, {"impaired-hypoglycaemia-awareness"})),
        renal_impairment=renal_impairment(facts, k),
        older_age=older_age(facts, k),
        child=child(facts, k),
        pregnancy=pregnancy(facts),
        dialysis=_finding(_conditions(facts.conditions, {"dialysis"})),
        insulin_pump=insulin_pump(facts),
        cgm=cgm(facts),
        secretagogue=secretagogue(facts),
        insulin_c_peptide_ratio=insulin_c_peptide_ratio(facts, k),
    )


def _finding(evidence: list[Evidence]) -> Finding:
    return found(evidence) if evidence else ABSENT
