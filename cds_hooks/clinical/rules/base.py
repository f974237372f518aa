"""What every rule is made of: the declaration (``Rule``), its criteria, its input and its result.

A rule is one module of this package holding one ``Rule``: the function that decides (plain, over typed
facts and findings), its criteria for the "why this card" table, the thresholds it reads beyond those of
its findings, the tests it proposes and, where it has one, its order-hook variant. Everything else that
speaks of a rule — its page's live thresholds, the thresholds required at start, the order hooks — is
derived from that declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from cds_hooks.clinical.facts.build import build_facts
from cds_hooks.clinical.facts.model import Evidence, MedicationUse, PatientFacts, PendingTest
from cds_hooks.clinical.findings import THRESHOLDS_READ, Finding, Findings, derive
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.clinical.switch_dose import THRESHOLDS as SWITCH_THRESHOLDS
from cds_hooks.clinical.switch_dose import SwitchPlan
from cds_hooks.fhir.resource_index import ResourceIndex

T = TypeVar("T")

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
    # How every switch of this request is made (issue 22 A, B7): set on the rules that switch insulin.
    plan: SwitchPlan | None = None
    # What an earlier card of the same answer proposes instead of this one (issue 22 B7): (lab kind or
    # ``REFERRAL``, that card's rule id), set by ``one_plan.share_out``.
    deferred: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RuleInput:
    facts: PatientFacts
    findings: Findings
    knowledge: Knowledge


# A judged draft order (order-select, order-sign) with its classification.
Order = tuple[MedicationUse, dict[str, Any]]


@dataclass(frozen=True)
class Criterion:
    """One criterion of a rule: what it reads and its role, for the "why this card" table.

    It reads a finding (an attribute of ``Findings``; the thresholds it compares against are that
    finding's, ``findings.THRESHOLDS_READ``) or, for what the rules read straight from the facts, a
    medication flag (``MedicationUse``), the pending tests of a workup, or another rule's verdict."""

    label: str
    finding: str = ""  # attribute of ``Findings``
    role: str = "required"  # "required" | "any of" | "supports" | "against"
    negate: bool = False  # the criterion is met when the finding is absent
    medication_flag: str = ""  # attribute of ``MedicationUse``: met when a medication on the record has it
    pending: tuple[str, ...] = ()  # workup tests (knowledge/workup.toml): met when one is pending
    amount: str = ""  # a number of ``Findings`` shown with the values while the finding is present
    amount_unit: str = ""
    rule: str = ""  # another rule's id: met when that rule fires, by its own verdict
    reads: tuple[str, ...] = ()  # thresholds the rule compares against for this criterion itself

    @property
    def thresholds(self) -> tuple[str, ...]:
        return (*THRESHOLDS_READ.get(self.finding, ()), *self.reads)


@dataclass(frozen=True)
class Rule:
    """One rule, declared once. Its page, the thresholds required at start and the order hooks are
    derived from this; tests/clinical/test_rule_declarations.py holds ``reads`` to the code."""

    id: str  # the card's source.topic.code, and knowledge/cards/<id>.toml
    evaluate: Callable[[RuleInput], RuleResult | None]  # patient-view
    criteria: tuple[Criterion, ...]
    workup: tuple[str, ...] = ()  # the tests it may propose (knowledge/workup.toml kinds)
    # The order-hook variant: the judged drafts, the patient's input and the indicator for a finding.
    order: Callable[[list[Order], RuleInput, str], RuleResult | None] | None = None
    # Thresholds the rule's own code (and its order variant) compares against, beyond its criteria's.
    reads: tuple[str, ...] = ()
    switch: bool = False  # its suggestion switches animal insulin (sized by clinical.switch_dose)

    @property
    def thresholds(self) -> tuple[str, ...]:
        """Every threshold the rule reads, in the order its criteria name them: shown on its page."""
        sizing = SWITCH_THRESHOLDS if self.switch else ()
        return tuple(dict.fromkeys([*(t for c in self.criteria for t in c.thresholds), *self.reads, *sizing]))


def cite(*findings: Finding) -> tuple[Evidence, ...]:
    """The evidence of ``findings``, each piece once, in order."""
    return tuple(dict.fromkeys(e for f in findings for e in f.evidence))


def current_animal(facts: PatientFacts) -> tuple[MedicationUse, ...]:
    return tuple(m for m in facts.medications if m.current and m.animal_insulin)


def names(meds: list[MedicationUse] | tuple[MedicationUse, ...]) -> tuple[str, ...]:
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
