"""Typed patient facts: the only thing rules see of the patient's record.

Every fact keeps a reference to the resource it came from and a human-readable description, and its
``Evidence`` carries the fact back: a finding cites evidence, and the card reads the cited value, unit,
dose or record kind from ``evidence.fact`` without going back to FHIR JSON or looking anything up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Evidence:
    """One line of evidence on a card: which resource, what it said, and the typed fact it is.

    Two pieces of evidence are the same when they cite the same resource with the same text; the fact
    rides along (``compare=False``), so citing a fact twice is still one line."""

    reference: str  # "Observation/abc" (or "" for a resource without an id)
    text: str  # "Insulin 120 µIU/mL on 2026-05-01"
    # The fact this evidence is (a LabResult, MedicationUse, ConditionFact or PendingTest); None for a
    # derived note ("Total daily insulin 210 U/day").
    fact: Fact | None = field(default=None, compare=False, repr=False)


class _CitesItself:
    """A fact whose ``evidence`` carries the fact: set once, when the frozen fact is made."""

    evidence: Evidence

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", replace(self.evidence, fact=self))


@dataclass(frozen=True)
class LabResult(_CitesItself):
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
    titre: float | None = None  # n of a 1:n titre (ANA), when the result gives one
    # As the laboratory reported it, for display: the quantity's (unit, code), and the value as written
    # for qualitative kinds ("46 U/mL", "1:320", "POSITIVE (immunoprecipitation)").
    reported_unit: tuple[str | None, str | None] | None = None
    reported_value: str | None = None


@dataclass(frozen=True)
class UnusableResult:
    """A result of a known kind that could not be read (unknown unit, no value): reported, never guessed."""

    kind: str
    reason: str
    evidence: Evidence


@dataclass(frozen=True)
class MedicationUse(_CitesItself):
    """One MedicationStatement or MedicationRequest, classified."""

    current: bool  # active / intended / on-hold (statement); active / on-hold (request), dated as current
    past: bool  # completed / stopped, an ended statement period, or a stale active order
    animal_insulin: bool
    insulin: bool  # any insulin (animal, human or analogue)
    systemic_glucocorticoid: bool
    insulin_profile: str | None  # "rapid-short" | "intermediate" | "premixed" | "long" | None
    daily_units: float | None  # total daily insulin units from the dosage, when computable
    name: str  # display name for cards
    evidence: Evidence
    ended: date | None = None  # last day of a past use, when the record says (None: unknown or current)
    # An active/on-hold order too old to count as current (issue 16): the year it is from. Cards citing
    # it say "active order from <year>: check whether still taken".
    stale_year: int | None = None
    daily_mg: float | None = None  # glucocorticoid mg/day from the dosage, when computable
    prednisolone_mg: float | None = None  # the same as prednisolone-equivalent mg/day
    glucocorticoid: str | None = None  # the glucocorticoid of knowledge/glucocorticoids.toml it is
    # A glucocorticoid's scheduled administrations per day (1 once daily, 2 twice daily), when the dosage
    # says; whether its effect lasts day and night (dexamethasone: knowledge/glucocorticoids.toml).
    administrations_per_day: float | None = None
    all_day: bool = False
    insulin_autoimmune_trigger: bool = False  # a known trigger drug of insulin autoimmune syndrome
    # A sulfonylurea or meglitinide: its hypoglycaemia mimics endogenous hyperinsulinism (issue 22 D11).
    insulin_secretagogue: bool = False
    duplicates: tuple[str, ...] = ()  # references of identical entries merged into this fact
    status: str | None = None  # the resource's status as recorded ("active", "on-hold", "draft", ...)
    # On hold: listed and stopped on switching, but not the current dose (issue 22 A5).
    held: bool = False
    pump: bool = False  # an insulin given as a rate (U/h): it runs through a pump (issue 22 A3)
    species: str | None = None  # "porcine" | "bovine" for an animal insulin whose product says so
    # The resource as received, for the suggestions that act on it (copy its dosage, stop it).
    source: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ConditionFact(_CitesItself):
    """An active, not-refuted Condition matched to one or more knowledge value sets; repeated entries of
    the same code are one fact (``count`` entries, earliest ``onset``)."""

    groups: frozenset[str]  # value-set ids it matched: "sle", "type-2-diabetes", ...
    name: str
    evidence: Evidence
    onset: str | None = None  # earliest onset (or recorded) date of the merged entries
    count: int = 1  # how many Condition resources say it


@dataclass(frozen=True)
class PendingTest(_CitesItself):
    """A test ordered or in progress, without a final result yet (issue 14): not proposed again."""

    kind: str  # lab kind of knowledge/labs.toml
    name: str  # the kind's display name
    ordered: datetime | None  # ServiceRequest.authoredOn (or occurrence), or the Observation's date
    status: str  # the resource's status: active, on-hold, draft (ServiceRequest); registered, preliminary
    evidence: Evidence  # "Insulin receptor antibodies: pending (ServiceRequest active), ordered 2026-05-20"


@dataclass(frozen=True)
class DeviceFact(_CitesItself):
    """An active Device the switch must know about: an insulin pump or a continuous glucose monitor."""

    kind: str  # "insulin-pump" | "cgm-device" (the value-set id it matched)
    name: str
    evidence: Evidence


@dataclass(frozen=True)
class PatientFact(_CitesItself):
    """The Patient resource's birth date, for the age the switch reads (issue 22 A1, A3)."""

    birth_date: date
    evidence: Evidence  # "Born 2017-05-01 (age 9)"

    def age(self, on: date) -> int:
        """Whole years on ``on``."""
        years = on.year - self.birth_date.year
        return years - ((on.month, on.day) < (self.birth_date.month, self.birth_date.day))


Fact = LabResult | MedicationUse | ConditionFact | PendingTest | DeviceFact | PatientFact


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
    pending: dict[str, list[PendingTest]] = field(default_factory=dict)  # kind -> pending tests
    patient: PatientFact | None = None  # the birth date, when the record gives one
    devices: list[DeviceFact] = field(default_factory=list)  # active insulin pumps and CGMs

    def lab(self, kind: str) -> list[LabResult]:
        return self.labs.get(kind, [])

    def has_condition(self, group: str) -> bool:
        return any(group in c.groups for c in self.conditions)

    def conditions_in(self, groups: frozenset[str] | set[str]) -> list[ConditionFact]:
        return [c for c in self.conditions if c.groups & groups]
