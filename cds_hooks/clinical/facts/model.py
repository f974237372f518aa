"""Typed patient facts: the only thing rules see of the patient's record.

Every fact keeps a reference to the resource it came from and a human-readable description, so a
card can show its evidence (value, unit, date) without going back to FHIR JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Evidence:
    """One line of evidence on a card: which resource, and what it said."""

    reference: str  # "Observation/abc" (or "" for a resource without an id)
    text: str  # "Insulin 120 µIU/mL on 2026-05-01"


@dataclass(frozen=True)
class LabResult:
    """One usable laboratory result of a known kind, normalised to the kind's canonical unit.

    ``value`` is set for quantitative results (in ``unit``); ``positive`` is set when the result says
    positive/negative (interpretation, coded or string value, titre, or above the reference range).
    """

    kind: str  # a key of knowledge.labs: "glucose", "glucose_fasting", "insulin", "ana", ...
    when: datetime  # timezone-aware
    value: float | None
    unit: str | None  # canonical unit of the kind when value is set
    positive: bool | None
    evidence: Evidence


@dataclass(frozen=True)
class UnusableResult:
    """A result of a known kind that could not be read (unknown unit, no value): reported, never guessed."""

    kind: str
    reason: str
    evidence: Evidence


@dataclass(frozen=True)
class MedicationUse:
    """One MedicationStatement or MedicationRequest, classified."""

    current: bool  # active / intended / on-hold (statement); active / on-hold (request)
    past: bool  # completed / stopped (exposure in the past, not current)
    animal_insulin: bool
    insulin: bool  # any insulin (animal, human or analogue)
    systemic_glucocorticoid: bool
    insulin_profile: str | None  # "rapid-short" | "intermediate" | "premixed" | "long" | None
    daily_units: float | None  # total daily insulin units from the dosage, when computable
    name: str  # display name for cards
    evidence: Evidence


@dataclass(frozen=True)
class ConditionFact:
    """An active, not-refuted Condition matched to one or more knowledge value sets."""

    groups: frozenset[str]  # value-set ids it matched: "sle", "type-2-diabetes", ...
    name: str
    evidence: Evidence


@dataclass
class PatientFacts:
    """Everything the rules may read, already filtered by status and lookback window."""

    patient_id: str
    now: datetime
    labs: dict[str, list[LabResult]] = field(default_factory=dict)  # kind -> newest first
    unusable: list[UnusableResult] = field(default_factory=list)
    medications: list[MedicationUse] = field(default_factory=list)
    conditions: list[ConditionFact] = field(default_factory=list)
    latest_weight_kg: LabResult | None = None
    # Newest date of any final/amended/corrected result of each kind, whatever its window or value:
    # the ataxia-telangiectasia rule asks "any glucose or HbA1c in 365 days?".
    last_result: dict[str, datetime] = field(default_factory=dict)

    def lab(self, kind: str) -> list[LabResult]:
        return self.labs.get(kind, [])

    def has_condition(self, group: str) -> bool:
        return any(group in c.groups for c in self.conditions)

    def conditions_in(self, groups: frozenset[str] | set[str]) -> list[ConditionFact]:
        return [c for c in self.conditions if c.groups & groups]
