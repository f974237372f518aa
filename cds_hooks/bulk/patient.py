"""One patient of an export, evaluated with the service's own pure patient-view evaluation.

The resources go into a :class:`ResourceIndex` in the order the service's prefetch would bring them
(the Patient, Observations newest first, medications, conditions, service requests, then the referenced
Medications), and :func:`evaluate_index` turns them into cards: facts → findings → rules → cards,
unchanged. Nothing here knows a rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cds_hooks.bulk.ndjson import Issue
from cds_hooks.clinical.evaluation import DEFAULT_BASE_URL, evaluate_index
from cds_hooks.clinical.facts.labs import observation_date
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.clinical.rules import RuleResult
from cds_hooks.fhir.patient import is_deceased
from cds_hooks.fhir.resource_index import ResourceIndex

# The prefetch keys' order: patient, observations, medicationStatements, medicationRequests, conditions,
# serviceRequests; the Medications a record references are read last.
_TYPE_ORDER = {
    t: i
    for i, t in enumerate(
        (
            "Patient",
            "Observation",
            "MedicationStatement",
            "MedicationRequest",
            "Condition",
            "ServiceRequest",
            "Medication",
        )
    )
}
SCREENED, DECEASED, NO_PATIENT, FAILED = "screened", "deceased", "no-patient", "failed"


@dataclass(frozen=True)
class CardRow:
    """One card as the clinical team's file lists it."""

    patient_id: str
    rule_id: str
    indicator: str
    summary: str
    decisive_values: str  # the evidence the card rests on, "; "-joined


@dataclass(frozen=True)
class PatientOutcome:
    """What screening one patient gave: its cards, or why it was not screened."""

    patient_id: str
    status: str  # SCREENED, DECEASED, NO_PATIENT (resources whose Patient is not in the export), FAILED
    cards: tuple[CardRow, ...] = field(default=())
    error: str | None = None
    resources: int = 0
    issues: tuple[Issue, ...] = ()  # NO_PATIENT: where each of its records was read
    evaluated: bool = False  # whether the evaluation ran (not when nothing but the Patient was left)


def _order(item: tuple[str, dict[str, Any]]) -> tuple[int, float]:
    rtype, resource = item
    if rtype == "Observation":
        when = observation_date(resource)
        return _TYPE_ORDER[rtype], -(when.timestamp() if when else float("-inf"))
    return _TYPE_ORDER.get(rtype, len(_TYPE_ORDER)), 0.0


def card_rows(patient_id: str, shown: list[tuple[RuleResult, dict[str, Any]]]) -> tuple[CardRow, ...]:
    rows = []
    for result, card in shown:
        topic = (card.get("source") or {}).get("topic") or {}
        rows.append(
            CardRow(
                patient_id=patient_id,
                rule_id=str(topic.get("code") or result.rule_id),
                indicator=str(card.get("indicator", "")),
                summary=str(card.get("summary", "")),
                decisive_values="; ".join(e.text for e in result.evidence),
            )
        )
    return tuple(rows)


def evaluate_patient(
    patient_id: str,
    resources: Iterable[tuple[str, dict[str, Any]]],
    *,
    knowledge: Knowledge,
    now: datetime,
    include_deceased: bool = False,
    base_url: str = DEFAULT_BASE_URL,
) -> PatientOutcome:
    """The cards of one patient from ``(resource type, resource)`` pairs. An unexpected failure costs this
    patient, never the run; its message names the exception type only (no record content)."""
    items = sorted(resources, key=_order)
    patient = next((r for t, r in items if t == "Patient"), None)
    if patient is None:
        return PatientOutcome(patient_id, NO_PATIENT, resources=len(items))
    if not include_deceased and is_deceased(patient, now):
        return PatientOutcome(patient_id, DECEASED, resources=len(items))
    if len(items) == 1:
        # Nothing but the Patient survived the bounds: no rule fires on a birth date alone, so there is
        # nothing to evaluate (tests/bulk/test_prefilter.py evaluates such patients to show it).
        return PatientOutcome(patient_id, SCREENED, resources=1)
    shown: list[tuple[RuleResult, dict[str, Any]]] = []
    try:
        index = ResourceIndex(r for _, r in items)
        evaluate_index(
            index, patient_id=patient_id, knowledge=knowledge, now=now, base_url=base_url, shown=shown
        )
    except Exception as exc:  # one odd record must not stop a population screen
        return PatientOutcome(
            patient_id, FAILED, error=f"unexpected error: {type(exc).__name__}", evaluated=True
        )
    return PatientOutcome(
        patient_id, SCREENED, card_rows(patient_id, shown), resources=len(items), evaluated=True
    )
