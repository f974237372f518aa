"""The clinical rules: plain functions over findings, each returning a ``RuleResult`` or ``None``.

Rule ids are the cards' ``source.topic.code``. The clinical basis of every rule is the seed text
(knowledge/sources/immune-insulin-resistance.md) and knowledge/thresholds.toml; the wording of each
card is in knowledge/cards/<rule-id>.toml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cds_hooks.clinical.facts.build import build_facts
from cds_hooks.clinical.facts.model import Evidence, MedicationUse, PatientFacts, PendingTest
from cds_hooks.clinical.findings import Finding, Findings, derive
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.resource_index import ResourceIndex

T = TypeVar("T")

ANIMAL_INSULIN_SWITCH = "animal-insulin-switch"
INSULIN_ANTIBODY_WORKUP = "insulin-antibody-workup"
TYPE_B = "type-b-insulin-resistance"
ATAXIA_TELANGIECTASIA = "ataxia-telangiectasia-ir"
GLUCOCORTICOID = "glucocorticoid-hyperglycemia"
INSULIN_AUTOIMMUNE_SYNDROME = "insulin-autoimmune-syndrome"

ANTIBODY_WORKUP = ("insulin_antibody", "insulin", "c_peptide", "glucose", "hba1c")
TYPE_B_WORKUP = ("insulin_receptor_antibody", "insulin_antibody", "ana", "insulin", "c_peptide")
IAS_WORKUP = ("insulin", "c_peptide", "insulin_receptor_antibody")
SCREENING = ("glucose", "hba1c")


@dataclass(frozen=True)
class RuleResult:
    """Why a rule fired: its variant (selects the card wording), evidence, and what to suggest."""

    rule_id: str
    variant: str
    evidence: tuple[Evidence, ...]
    # Lab kinds to propose: only tests with no valid result in their window, not pending, and not
    # excluded by a condition on the record (``tests_to_propose``).
    workup: tuple[str, ...] = ()
    switch_from: tuple[MedicationUse, ...] = ()  # current animal insulins to replace
    referral: bool = False
    medications: tuple[str, ...] = ()  # names for the {medications} placeholder of the wording
    indicator: str | None = None  # overrides the wording's indicator (order-sign makes findings warnings)
    # Order hooks: draft orders to replace (delete the draft, create the human-insulin replacement).
    replace_drafts: tuple[tuple[MedicationUse, dict[str, Any]], ...] = ()
    monitoring: tuple[str, ...] = ()  # lab kinds to suggest for monitoring, even with a recent result
    # Tests of this rule's workup already ordered or in progress: the card lists
    # "pending: <test>, ordered <date>" instead of proposing them.
    pending: tuple[PendingTest, ...] = ()
    # glucocorticoid-hyperglycemia: prednisolone-equivalent mg/day summed over the current systemic
    # glucocorticoids, or None when a dose is unknown (then ``dose_unknown``; the card says so).
    prednisolone_mg: float | None = None
    dose_unknown: bool = False


@dataclass(frozen=True)
class RuleInput:
    facts: PatientFacts
    findings: Findings
    knowledge: Knowledge


def _evidence(*findings: Finding) -> tuple[Evidence, ...]:
    return tuple(dict.fromkeys(e for f in findings for e in f.evidence))


def _current_animal(facts: PatientFacts) -> tuple[MedicationUse, ...]:
    return tuple(m for m in facts.medications if m.current and m.animal_insulin)


def _names(meds: list[MedicationUse] | tuple[MedicationUse, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.name for m in meds))


def tests_to_propose(x: RuleInput, kinds: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[PendingTest, ...]]:
    """(the tests to propose, the pending ones): a test is proposed only when no valid result of a kind
    that satisfies it is in that kind's window, none is pending (ordered or in progress), and no
    condition of its ``not_with`` is on the record (ANA in known SLE, Sjögren's, RA)."""
    proposed: list[str] = []
    pending: list[PendingTest] = []
    for kind in kinds:
        test = x.knowledge.workup.get(kind)
        if test is None or any(x.facts.lab(s) for s in test.satisfied_by):
            continue
        waiting = [p for s in test.satisfied_by for p in x.facts.pending.get(s, [])]
        if waiting:
            pending += waiting
        elif not any(x.facts.has_condition(c) for c in test.not_with):
            proposed.append(kind)
    return tuple(proposed), tuple(dict.fromkeys(pending))


def insulin_antibody_workup(x: RuleInput) -> RuleResult | None:
    """Animal insulin (current, or ended within ``animal_insulin_past_years``) with at least one sign of
    antibody-mediated resistance: labile glucose, extreme requirement or markedly elevated insulin. A
    positive insulin antibody makes it "likely"; on its own it is not a sign (most insulin-treated
    patients have antibodies, reference §1c)."""
    f = x.findings
    if not f.animal_insulin_exposure:
        return None
    signs = [s for s in (f.labile_glucose, f.extreme_requirement, f.insulin_marked) if s]
    if not signs:
        return None
    workup, pending = tests_to_propose(x, ANTIBODY_WORKUP)
    exposed = set(f.animal_insulin_exposure.evidence)
    return RuleResult(
        rule_id=INSULIN_ANTIBODY_WORKUP,
        variant="likely" if f.insulin_antibody_positive else "workup",
        evidence=_evidence(f.animal_insulin_exposure, *signs, f.insulin_antibody_positive),
        workup=workup,
        pending=pending,
        switch_from=_current_animal(x.facts),
        medications=_names([m for m in x.facts.medications if m.evidence in exposed]),
    )


def animal_insulin_switch(x: RuleInput) -> RuleResult | None:
    """A current animal insulin without signs of antibody-mediated resistance (else rule 2 fires): an
    ``info`` card, prevention being the point (issue 14 item 4). A positive antibody result is listed."""
    if not x.findings.current_animal_insulin or insulin_antibody_workup(x) is not None:
        return None
    return RuleResult(
        rule_id=ANIMAL_INSULIN_SWITCH,
        variant="default",
        evidence=_evidence(x.findings.current_animal_insulin, x.findings.insulin_antibody_positive),
        switch_from=_current_animal(x.facts),
        medications=_names(_current_animal(x.facts)),
        indicator="info",
    )


def _recent_negative_receptor_antibody(x: RuleInput) -> bool:
    if not x.findings.receptor_antibody_negative:
        return False
    since = x.facts.now - timedelta(days=x.knowledge.threshold("receptor_ab_negative_lookback"))
    negatives = [r for r in x.facts.lab("insulin_receptor_antibody") if r.positive is False]
    return any(r.when >= since for r in negatives)


def type_b_insulin_resistance(x: RuleInput) -> RuleResult | None:
    """Confirmed by a positive insulin-receptor antibody, or suspected from severe insulin resistance
    together with autoimmunity (an autoimmune disease, or ANA >= 1:160 / positive without titre).

    Severe resistance on insulin: an extreme requirement with a supporting feature (>= 3 U/kg/day,
    fasting hypoglycaemia, acanthosis nigricans, BMI < 30). Off insulin: markedly elevated insulin, or
    fasting hypoglycaemia with elevated insulin (exogenous insulin and its antibodies distort the assay,
    so levels count only off insulin). Not suspected when insulin autoimmune syndrome explains the high
    insulin (rule 11) or a recent insulin-receptor antibody was negative."""
    f = x.findings
    if f.receptor_antibody_positive:
        workup, pending = tests_to_propose(x, ("ana",))
        return RuleResult(
            rule_id=TYPE_B,
            variant="confirmed",
            evidence=_evidence(
                f.receptor_antibody_positive,
                f.autoimmune_disease,
                f.ana_positive,
                f.insulin_marked,
                f.extreme_requirement,
            ),
            workup=workup,
            pending=pending,
            referral=True,
        )
    severe: list[Finding] = []
    if f.current_insulin:
        if f.extreme_requirement and f.type_b_support:
            severe += [f.extreme_requirement, f.type_b_support]
    else:
        if f.insulin_marked:
            severe.append(f.insulin_marked)
        if f.fasting_hypoglycaemia and f.insulin_elevated:
            severe += [f.fasting_hypoglycaemia, f.insulin_elevated]
    autoimmune = [s for s in (f.autoimmune_disease, f.ana_type_b) if s]
    if not severe or not autoimmune or _recent_negative_receptor_antibody(x):
        return None
    if insulin_autoimmune_syndrome(x) is not None:
        return None
    workup, pending = tests_to_propose(x, TYPE_B_WORKUP)
    return RuleResult(
        rule_id=TYPE_B,
        variant="suspected",
        evidence=_evidence(*severe, *autoimmune),
        workup=workup,
        pending=pending,
        referral=True,
    )


def insulin_autoimmune_syndrome(x: RuleInput) -> RuleResult | None:
    """Never on insulin, a positive insulin antibody, and fasting hypoglycaemia (any glucose < 54 mg/dL
    included) or markedly elevated insulin: consider insulin autoimmune syndrome (Hirata disease;
    reference §4b, §4d). Known trigger drugs on the record are listed."""
    f = x.findings
    if f.insulin_ever or not f.insulin_antibody_positive:
        return None
    signs = [s for s in (f.fasting_hypoglycaemia, f.insulin_marked) if s]
    if not signs:
        return None
    triggers = [m for m in x.facts.medications if m.insulin_autoimmune_trigger]
    workup, pending = tests_to_propose(x, IAS_WORKUP)
    return RuleResult(
        rule_id=INSULIN_AUTOIMMUNE_SYNDROME,
        variant="triggers" if triggers else "default",
        evidence=tuple(
            dict.fromkeys([*_evidence(f.insulin_antibody_positive, *signs), *(m.evidence for m in triggers)])
        ),
        workup=workup,
        pending=pending,
        referral=True,
        medications=_names(triggers),
    )


def ataxia_telangiectasia_ir(x: RuleInput) -> RuleResult | None:
    """Ataxia-telangiectasia with hyperglycaemia (measured or diagnosed) or hyperinsulinaemia, or never
    screened; the screening card is silent while a glucose or HbA1c test is pending."""
    f = x.findings
    if not f.ataxia_telangiectasia:
        return None
    signs = [s for s in (f.hyperglycaemia, f.diabetes, f.insulin_elevated) if s]
    if signs:
        workup, pending = tests_to_propose(x, ("glucose", "hba1c", "insulin"))
        return RuleResult(
            rule_id=ATAXIA_TELANGIECTASIA,
            variant="hyperglycaemia",
            evidence=_evidence(f.ataxia_telangiectasia, *signs),
            workup=workup,
            pending=pending,
        )
    if f.glycaemia_tested:
        return None
    workup, pending = tests_to_propose(x, SCREENING)
    if pending:
        return None
    return RuleResult(
        rule_id=ATAXIA_TELANGIECTASIA,
        variant="screening",
        evidence=_evidence(f.ataxia_telangiectasia),
        workup=workup,
    )


def glucocorticoid_hyperglycemia(x: RuleInput) -> RuleResult | None:
    """A current systemic glucocorticoid with *measured* hyperglycaemia or hyperinsulinaemia (a diabetes
    diagnosis alone is not enough). Replacement is not excess: with adrenal insufficiency on the record
    and a prednisolone-equivalent total at most ``glucocorticoid_replacement_max``, no card; an unknown
    dose fires and says so (issue 14 item 9)."""
    f = x.findings
    if not f.current_glucocorticoid:
        return None
    signs = [s for s in (f.hyperglycaemia, f.insulin_elevated) if s]
    if not signs:
        return None
    total = f.glucocorticoid_prednisolone_mg
    replacement = x.knowledge.threshold("glucocorticoid_replacement_max")
    if f.adrenal_insufficiency and total is not None and total <= replacement:
        return None
    if total is None:
        dose = Evidence("", "Daily glucocorticoid dose unknown (no structured dose): excess cannot be judged")
    else:
        dose = Evidence("", f"Total systemic glucocorticoid {total:.3g} mg/day prednisolone equivalent")
    workup, pending = tests_to_propose(x, SCREENING)
    return RuleResult(
        rule_id=GLUCOCORTICOID,
        variant="default",
        evidence=(*_evidence(f.current_glucocorticoid), dose, *_evidence(*signs, f.adrenal_insufficiency)),
        workup=workup,
        pending=pending,
        medications=_names([m for m in x.facts.medications if m.current and m.systemic_glucocorticoid]),
        prednisolone_mg=total,
        dose_unknown=total is None,
    )


Rule = Callable[[RuleInput], RuleResult | None]

# Card order: the most actionable first.
PATIENT_VIEW_RULES: tuple[Rule, ...] = (
    insulin_antibody_workup,
    animal_insulin_switch,
    type_b_insulin_resistance,
    insulin_autoimmune_syndrome,
    ataxia_telangiectasia_ir,
    glucocorticoid_hyperglycemia,
)


def evaluate_rules(x: RuleInput, rules: tuple[Rule, ...] = PATIENT_VIEW_RULES) -> list[RuleResult]:
    return [r for rule in rules if (r := rule(x)) is not None]


# Reruns of the evaluation after setting aside invalid cited resources (each round drops at least one).
MAX_VALIDATION_ROUNDS = 4


def cited_references(results: list[RuleResult]) -> set[str]:
    """``Type/id`` of every resource the results cite as evidence."""
    return {e.reference for r in results for e in r.evidence if e.reference}


def rule_input(index: ResourceIndex, knowledge: Knowledge, patient_id: str, now: datetime) -> RuleInput:
    """Facts and findings for the rules, from the index (resources set aside as invalid excluded)."""
    facts = build_facts(index, knowledge, patient_id, now)
    return RuleInput(facts=facts, findings=derive(facts, knowledge), knowledge=knowledge)


def evaluate_until_valid(
    index: ResourceIndex, run: Callable[[], tuple[T, list[RuleResult]]]
) -> tuple[T, list[RuleResult]]:
    """Cards rest only on valid FHIR R4: validate what ``run``'s results cite, set aside the invalid
    resources and run again, until nothing new is rejected (at most ``MAX_VALIDATION_ROUNDS`` runs)."""
    for _ in range(MAX_VALIDATION_ROUNDS):
        state, results = run()
        if not index.reject_invalid(cited_references(results)):
            break
    return state, results
