"""What of an export the rules could read: the bounds applied to each record before grouping by patient.

The bounds are the service's own: the look-back window its prefetch puts on the Observation searches
(``ServiceDefinition.windows``), and the recognisers the facts start with (the lab classifier, the
medication classifier, the condition value sets, the statuses each fact reads). A record they would skip
at once is dropped here; anything they might read is kept. The bounds are conservative: a date that
cannot be compared, a partial date, a medication named by a reference to a Medication elsewhere in the
export, all stay. Rules are never re-implemented here: the patient's evaluation decides.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cds_hooks.clinical.facts.conditions import ACTIVE, NOT_TRUE, condition_memo
from cds_hooks.clinical.facts.labs import VALID_STATUSES, lab_classifier
from cds_hooks.clinical.facts.medications import NOT_RELEVANT, medication_classifier, medication_concepts
from cds_hooks.clinical.facts.pending import OBSERVATION_PENDING, REQUEST_PENDING, request_kind
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.concept_memo import concept_key
from cds_hooks.fhir.json_access import codes, obj, string
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.hooks.prefetch import window_start
from cds_hooks.hooks.registry import PATIENT_VIEW_ID, build_services

OBSERVATION_STATUSES = VALID_STATUSES | OBSERVATION_PENDING
# Dates an Observation may carry; the server's ``date`` search reads effective[x], the facts also issued.
_OBSERVATION_DATES = ("effectiveDateTime", "effectiveInstant", "issued")


def medication_reference(resource: dict[str, Any]) -> str | None:
    """``Medication/<id>`` for a ``medicationReference`` to a Medication outside the resource."""
    ref = obj(resource.get("medicationReference")).get("reference")
    if not isinstance(ref, str) or not ref or ref.startswith("#"):
        return None
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 and parts[-2] == "Medication" else None


@dataclass(frozen=True)
class Bounds:
    """The bounds for one screen (``now`` fixes the window for every patient, as ``--now`` does)."""

    knowledge: Knowledge
    now: datetime
    # Observations dated before this day (UTC, one day earlier again for time zones) are out of window.
    observation_cutoff: str

    @classmethod
    def for_screen(cls, knowledge: Knowledge, now: datetime) -> Bounds:
        days = max(build_services(knowledge)[PATIENT_VIEW_ID].windows.values())
        cutoff = window_start(days, now) - timedelta(days=1)
        return cls(knowledge, now, cutoff.date().isoformat())

    def keep(self, resource_type: str, resource: dict[str, Any]) -> bool:
        """Whether a rule could read this resource (Patient and Medication always: see the module)."""
        check = _CHECKS.get(resource_type)
        return True if check is None else check(self, resource)

    # ---------------------------------------------------------------- per type

    def _observation(self, resource: dict[str, Any]) -> bool:
        if string(resource.get("status")) not in OBSERVATION_STATUSES:
            return False
        if lab_classifier(self.knowledge).kind_of(resource.get("code")) is None:
            return False
        return self.in_window(resource)

    def in_window(self, resource: dict[str, Any]) -> bool:
        """Any date of the Observation on or after the cutoff, compared at its own precision (a partial
        "2025" stays in for a cutoff in 2025); an Observation without any date stays too."""
        period = obj(resource.get("effectivePeriod"))
        dates = [resource.get(name) for name in _OBSERVATION_DATES] + [period.get("start"), period.get("end")]
        present = [d for d in dates if isinstance(d, str) and d]
        if not present:
            return True
        return any(d[:10] >= self.observation_cutoff[: len(d[:10])] for d in present)

    def _medication_use(self, resource: dict[str, Any]) -> bool:
        if medication_reference(resource) is not None:
            return True  # named by a Medication elsewhere in the export: the patient's evaluation decides
        concepts = medication_concepts(resource, _EMPTY_INDEX)
        return bool(concepts) and medication_classifier(self.knowledge).classify(concepts) is not NOT_RELEVANT

    def _condition(self, resource: dict[str, Any]) -> bool:
        if not codes(resource.get("clinicalStatus")) & ACTIVE:
            return False
        if codes(resource.get("verificationStatus")) & NOT_TRUE:
            return False
        code = resource.get("code")
        return isinstance(code, dict) and bool(condition_memo(self.knowledge).get(concept_key(code), code))

    def _service_request(self, resource: dict[str, Any]) -> bool:
        if string(resource.get("status")) not in REQUEST_PENDING:
            return False
        return request_kind(resource.get("code"), self.knowledge, lab_classifier(self.knowledge)) is not None


_EMPTY_INDEX = ResourceIndex()
_CHECKS = {
    "Observation": Bounds._observation,
    "MedicationRequest": Bounds._medication_use,
    "MedicationStatement": Bounds._medication_use,
    "Condition": Bounds._condition,
    "ServiceRequest": Bounds._service_request,
}


@functools.lru_cache(maxsize=4)
def bounds(knowledge: Knowledge, now: datetime) -> Bounds:
    """One ``Bounds`` per knowledge and instant in a process (an executor screens many parts)."""
    return Bounds.for_screen(knowledge, now)
