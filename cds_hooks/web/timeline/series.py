"""What the timeline shows, read with the clinical core's own readers and facts.

Labs are recognised and normalised by the same classifier and reader as the rules
(``clinical.facts.labs``) over the chosen range — the rules look back only each kind's window;
medications and conditions are the very facts the rules saw, placed in time by their resources' dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cds_hooks.clinical.facts.labs import VALID_STATUSES, lab_classifier, observation_date, read_observation
from cds_hooks.clinical.facts.model import LabResult, MedicationUse, PatientFacts
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.dates import parse_fhir_datetime
from cds_hooks.fhir.json_access import obj, string
from cds_hooks.fhir.resource_index import ResourceIndex

# Quantitative kinds drawn as lines, in panel order; qualitative kinds drawn as +/− markers.
GLUCOSE_KINDS = ("glucose", "glucose_fasting", "ogtt_2h")
LEVEL_KINDS = ("hba1c", "insulin", "c_peptide")
ANTIBODY_KINDS = ("insulin_antibody", "insulin_receptor_antibody", "ana")

# Thresholds drawn as reference lines, per panel (names in knowledge/thresholds.toml).
REFERENCE_LINES: dict[str, tuple[str, ...]] = {
    "glucose": ("glucose_hyper_random", "glucose_hyper_fasting", "glucose_fasting_hypo", "glucose_any_hypo"),
    "hba1c": ("hba1c_hyper",),
    "insulin": ("insulin_elevated", "insulin_marked"),
    "tdd": ("tdd_extreme",),
}


# Medication groups on the time axis: the kinds of medication the rules' facts hold.
ANIMAL_INSULIN = "animal insulin"
HUMAN_INSULIN = "human insulin / analogue"
GLUCOCORTICOID = "systemic glucocorticoid"
IAS_TRIGGER = "trigger drug of insulin autoimmune syndrome"
INSULIN_GROUPS = (ANIMAL_INSULIN, HUMAN_INSULIN)


@dataclass(frozen=True)
class Exposure:
    """One medication course on the time axis (end ``None``: ongoing or unknown)."""

    group: str  # one of GROUPS
    name: str
    start: datetime | None
    end: datetime | None
    current: bool
    daily_units: float | None
    prednisolone_mg: float | None
    reference: str


@dataclass(frozen=True)
class ConditionMark:
    name: str
    when: datetime | None
    groups: tuple[str, ...]
    reference: str


@dataclass
class Timeline:
    start: datetime
    end: datetime
    labs: dict[str, list[LabResult]] = field(default_factory=dict)  # kind -> oldest first, in range
    exposures: list[Exposure] = field(default_factory=list)
    conditions: list[ConditionMark] = field(default_factory=list)
    thresholds: dict[str, list[tuple[str, float, str]]] = field(default_factory=dict)

    def total_daily_dose(self) -> list[tuple[datetime, float]]:
        """Steps of the summed daily insulin dose: one point wherever a dosed insulin course starts or
        ends within the range (the sum of the courses running then)."""
        dosed = [e for e in self.exposures if e.daily_units is not None and e.group in INSULIN_GROUPS]
        moments = sorted(
            {self.start, self.end}
            | {t for e in dosed for t in (e.start, e.end) if t is not None and self.start <= t <= self.end}
        )
        steps = []
        for t in moments:
            running = [e for e in dosed if (e.start is None or e.start <= t) and (e.end is None or t < e.end)]
            if running:
                steps.append((t, sum(e.daily_units or 0.0 for e in running)))
        return steps


def _period(resource: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    period = obj(resource.get("effectivePeriod"))
    start = parse_fhir_datetime(period.get("start")) or parse_fhir_datetime(resource.get("effectiveDateTime"))
    end = parse_fhir_datetime(period.get("end"))
    if resource.get("resourceType") == "MedicationRequest":
        validity = obj(obj(resource.get("dispenseRequest")).get("validityPeriod"))
        start = (
            start
            or parse_fhir_datetime(validity.get("start"))
            or parse_fhir_datetime(resource.get("authoredOn"))
        )
        end = end or parse_fhir_datetime(validity.get("end"))
    return start, end


def _group(use: MedicationUse) -> str:
    if use.animal_insulin:
        return ANIMAL_INSULIN
    if use.insulin:
        return HUMAN_INSULIN
    if use.systemic_glucocorticoid:
        return GLUCOCORTICOID
    return IAS_TRIGGER  # the rules' facts hold only insulins, glucocorticoids and these trigger drugs


def build_timeline(
    index: ResourceIndex, knowledge: Knowledge, facts: PatientFacts, start: datetime, end: datetime
) -> Timeline:
    """Labs read from ``index`` over ``start``–``end``; medications and conditions are the rules' own
    facts (``facts``), dated from the resources they cite."""
    timeline = Timeline(start=start, end=end)
    classifier = lab_classifier(knowledge)
    ana_threshold = knowledge.threshold("ana_titre_positive")
    for observation in index.of_type("Observation"):
        if string(observation.get("status")) not in VALID_STATUSES:
            continue
        kind = classifier.kind_of(observation.get("code"))
        if kind is None or kind == "body_weight":
            continue
        when = observation_date(observation)
        if when is None or not start <= when <= end:
            continue
        result = read_observation(observation, knowledge.labs[kind], when, ana_threshold)
        if isinstance(result, LabResult):
            timeline.labs.setdefault(kind, []).append(result)
    for results in timeline.labs.values():
        results.sort(key=lambda r: r.when)

    for use in facts.medications:
        course_start, course_end = _period(index.get(use.evidence.reference) or {})
        if (course_end is not None and course_end < start) or (
            course_start is not None and course_start > end
        ):
            continue
        timeline.exposures.append(
            Exposure(
                group=_group(use),
                name=use.name,
                start=course_start,
                end=course_end,
                current=use.current,
                daily_units=use.daily_units,
                prednisolone_mg=use.prednisolone_mg,
                reference=use.evidence.reference,
            )
        )
    for condition in facts.conditions:
        resource = index.get(condition.evidence.reference) or {}
        when = parse_fhir_datetime(resource.get("onsetDateTime")) or parse_fhir_datetime(
            resource.get("recordedDate")
        )
        timeline.conditions.append(
            ConditionMark(condition.name, when, tuple(sorted(condition.groups)), condition.evidence.reference)
        )
    for panel, names in REFERENCE_LINES.items():
        timeline.thresholds[panel] = [
            (name, knowledge.thresholds[name].value, knowledge.thresholds[name].unit)
            for name in names
            if name in knowledge.thresholds
        ]
    return timeline
