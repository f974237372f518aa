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
from cds_hooks.clinical.facts.model import Evidence, MedicationUse, PatientFacts
from cds_hooks.clinical.findings import Finding, Findings, derive
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.resource_index import ResourceIndex

T = TypeVar("T")

ANIMAL_INSULIN_SWITCH = "animal-insulin-switch"
INSULIN_ANTIBODY_WORKUP = "insulin-antibody-workup"
TYPE_B = "type-b-insulin-resistance"
ATAXIA_TELANGIECTASIA = "ataxia-telangiectasia-ir"
GLUCOCORTICOID = "glucocorticoid-hyperglycemia"


@dataclass(frozen=True)
class RuleResult:
    """Why a rule fired: its variant (selects the card wording), evidence, and what to suggest."""

    rule_id: str
    variant: str
    evidence: tuple[Evidence, ...]
    workup: tuple[str, ...] = ()  # lab kinds to suggest ordering, when no valid result is in the window
    switch_from: tuple[MedicationUse, ...] = ()  # current animal insulins to replace
    referral: bool = False
    medications: tuple[str, ...] = ()  # names for the {medications} placeholder of the wording
    indicator: str | None = None  # overrides the wording's indicator (order-sign makes findings warnings)
    # Order hooks: draft orders to replace (delete the draft, create the human-insulin replacement).
    replace_drafts: tuple[tuple[MedicationUse, dict[str, Any]], ...] = ()
    monitoring: tuple[str, ...] = ()  # lab kinds to suggest for monitoring, even with a recent result


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


def insulin_antibody_workup(x: RuleInput) -> RuleResult | None:
    """Animal insulin (current or past) with signs of antibody-mediated resistance."""
    f = x.findings
    if not f.animal_insulin_exposure:
        return None
    signs = [
        s
        for s in (f.labile_glucose, f.extreme_requirement, f.insulin_marked, f.insulin_antibody_positive)
        if s
    ]
    if not signs:
        return None
    likely = bool(f.insulin_antibody_positive)
    return RuleResult(
        rule_id=INSULIN_ANTIBODY_WORKUP,
        variant="likely" if likely else "workup",
        evidence=_evidence(f.animal_insulin_exposure, *signs),
        workup=("insulin_antibody", "insulin", "c_peptide", "glucose", "hba1c"),
        switch_from=_current_animal(x.facts),
        medications=_names([m for m in x.facts.medications if m.animal_insulin]),
    )


def animal_insulin_switch(x: RuleInput) -> RuleResult | None:
    """A current animal insulin, without the signs that make it an antibody workup (rule 2)."""
    if not x.findings.current_animal_insulin or insulin_antibody_workup(x) is not None:
        return None
    return RuleResult(
        rule_id=ANIMAL_INSULIN_SWITCH,
        variant="default",
        evidence=_evidence(x.findings.current_animal_insulin),
        switch_from=_current_animal(x.facts),
        medications=_names(_current_animal(x.facts)),
    )


def _recent_negative_receptor_antibody(x: RuleInput) -> bool:
    if not x.findings.receptor_antibody_negative:
        return False
    since = x.facts.now - timedelta(days=x.knowledge.threshold("receptor_ab_negative_lookback"))
    negatives = [r for r in x.facts.lab("insulin_receptor_antibody") if r.positive is False]
    return any(r.when >= since for r in negatives)


def type_b_insulin_resistance(x: RuleInput) -> RuleResult | None:
    """Confirmed by a positive insulin-receptor antibody, or suspected from severe insulin resistance
    together with autoimmunity. Insulin levels count only off insulin (exogenous insulin and its
    antibodies distort the assay); on insulin the dose criterion applies."""
    f = x.findings
    if f.receptor_antibody_positive:
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
            workup=("ana",),
            referral=True,
        )
    off_insulin = not f.current_insulin
    severe: list[Finding] = []
    if f.extreme_requirement:
        severe.append(f.extreme_requirement)
    if off_insulin and f.insulin_marked:
        severe.append(f.insulin_marked)
    if off_insulin and f.fasting_hypoglycaemia and f.insulin_elevated:
        severe += [f.fasting_hypoglycaemia, f.insulin_elevated]
    if not severe:
        return None
    autoimmune: list[Finding] = [s for s in (f.autoimmune_disease, f.ana_positive) if s]
    if f.insulin_antibody_positive and not f.animal_insulin_exposure:
        autoimmune.append(f.insulin_antibody_positive)
    if not autoimmune or _recent_negative_receptor_antibody(x):
        return None
    return RuleResult(
        rule_id=TYPE_B,
        variant="suspected",
        evidence=_evidence(*severe, *autoimmune),
        workup=("insulin_receptor_antibody", "insulin_antibody", "ana", "insulin", "c_peptide"),
        referral=True,
    )


def ataxia_telangiectasia_ir(x: RuleInput) -> RuleResult | None:
    """Ataxia-telangiectasia with hyperglycaemia or hyperinsulinaemia, or never screened."""
    f = x.findings
    if not f.ataxia_telangiectasia:
        return None
    signs = [s for s in (f.hyperglycaemia, f.insulin_elevated) if s]
    if signs:
        return RuleResult(
            rule_id=ATAXIA_TELANGIECTASIA,
            variant="hyperglycaemia",
            evidence=_evidence(f.ataxia_telangiectasia, *signs),
            workup=("glucose", "hba1c", "insulin"),
        )
    if not f.glycaemia_tested:
        return RuleResult(
            rule_id=ATAXIA_TELANGIECTASIA,
            variant="screening",
            evidence=_evidence(f.ataxia_telangiectasia),
            workup=("glucose", "hba1c"),
        )
    return None


def glucocorticoid_hyperglycemia(x: RuleInput) -> RuleResult | None:
    """A current systemic glucocorticoid with hyperglycaemia or hyperinsulinaemia: a non-immune cause."""
    f = x.findings
    if not f.current_glucocorticoid:
        return None
    signs = [s for s in (f.hyperglycaemia, f.insulin_elevated) if s]
    if not signs:
        return None
    return RuleResult(
        rule_id=GLUCOCORTICOID,
        variant="default",
        evidence=_evidence(f.current_glucocorticoid, *signs),
        workup=("glucose", "hba1c"),
        medications=_names([m for m in x.facts.medications if m.current and m.systemic_glucocorticoid]),
    )


Rule = Callable[[RuleInput], RuleResult | None]

# Card order: the most actionable first.
PATIENT_VIEW_RULES: tuple[Rule, ...] = (
    insulin_antibody_workup,
    animal_insulin_switch,
    type_b_insulin_resistance,
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
