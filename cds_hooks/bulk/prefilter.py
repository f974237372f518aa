"""What of an export the rules could read: the bounds applied to each record before grouping by patient.

The bounds are the service's own: the look-back window its prefetch puts on the Observation searches
(``ServiceDefinition.windows``), and the recognisers the facts start with (the lab classifier, the
medication classifier, the condition value sets, the statuses each fact reads). A record they would skip
at once is dropped here; anything they might read is kept. The bounds are conservative: a date that
cannot be compared, a partial date, a medication named by a reference to a Medication elsewhere in the
export, all stay. Rules are never re-implemented here: the patient's evaluation decides.

Most of an export is history: nine in ten of a Synthea adult's Observations are years old. Parsing each
of them only to read its date costs more than everything else the screen does, so :meth:`Bounds.raw_outside`
answers "out of window" from the line's bytes when it can say so for certain (an Observation line whose
dates are all before the cutoff), and such a line is counted without being parsed. Every other line is
parsed and bounded as above.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cds_hooks.clinical.facts.conditions import ACTIVE, NOT_TRUE, condition_memo, condition_valueset_ids
from cds_hooks.clinical.facts.labs import VALID_STATUSES, lab_classifier
from cds_hooks.clinical.facts.medications import NOT_RELEVANT, medication_classifier, medication_concepts
from cds_hooks.clinical.facts.patient import device_kind
from cds_hooks.clinical.facts.pending import OBSERVATION_PENDING, REQUEST_PENDING, request_kind
from cds_hooks.clinical.knowledge import Knowledge, ValueSet, normalise_code, union
from cds_hooks.fhir.concept_memo import concept_key
from cds_hooks.fhir.json_access import codes, obj, string
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.hooks.prefetch import window_start
from cds_hooks.hooks.registry import PATIENT_VIEW_ID, build_services

OBSERVATION_STATUSES = VALID_STATUSES | OBSERVATION_PENDING
# Dates an Observation may carry; the server's ``date`` search reads effective[x], the facts also issued.
_OBSERVATION_DATES = ("effectiveDateTime", "effectiveInstant", "issued")

# The raw scan (see the module): a complete JSON object whose first member says it is an Observation, no
# contained resource (whose own dates could stand in for missing ones), at least one top-level date member
# and every date of a date member or a Period, at any depth, read from the bytes. Keys inside a JSON
# string are escaped (\"issued\") and never match.
_RAW_TYPE = re.compile(rb'\A\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]+)"')
# Each date member (a top-level date or a Period's start/end, at any depth) and its plain-string value
# (empty when the value is not a plain string: then the line is parsed).
_RAW_DATES = re.compile(rb'"(effectiveDateTime|effectiveInstant|issued|start|end)"\s*:\s*(?:"([^"\\]*)")?')
_TOP_DATES = frozenset({b"effectiveDateTime", b"effectiveInstant", b"issued"})
# The raw scan of a Condition: every coding's code and every text or display, read from the bytes of a
# line without a backslash (so each string is as the parser would give it).
_RAW_STRINGS = re.compile(rb'"(code|text|display)"\s*:\s*"([^"\\]*)"')
# Distinct codes and names remembered per worker; past this many the scan still answers, unmemoised.
_RAW_MEMO_ENTRIES = 100_000


class RawConcepts:
    """Whether any code or name in a line could match one of ``valuesets``: each code against every
    system's codes and filters (whatever system it is listed under), each name against every text
    pattern (exclusions left out), so it may say yes when the facts say no, never the other way round.
    Memoised by the bytes, as the facts' own classifiers are memoised by concept: a population repeats
    the same few hundred condition codes and names."""

    def __init__(self, valuesets: list[ValueSet]) -> None:
        any_of = union(valuesets)
        self._systems = [(s, any_of.exact.get(s, frozenset()), any_of.filters.get(s)) for s in any_of.systems]
        self._text = any_of.text_pattern
        self._codes: dict[bytes, bool] = {}
        self._names: dict[bytes, bool] = {}

    def may_match(self, line: bytes) -> bool:
        for member, value in _RAW_STRINGS.findall(line):
            if self._code(value) if member == b"code" else self._name(value):
                return True
        return False

    def _code(self, raw: bytes) -> bool:
        known = self._codes.get(raw)
        if known is None:
            try:
                code = raw.decode("utf-8")
            except UnicodeDecodeError:
                return True  # not valid text: the parser decides (it makes the line an issue)
            known = any(self._listed(s, exact, pattern, code) for s, exact, pattern in self._systems)
            if len(self._codes) < _RAW_MEMO_ENTRIES:
                self._codes[raw] = known
        return known

    @staticmethod
    def _listed(system: str, exact: frozenset[str], pattern: re.Pattern[str] | None, code: str) -> bool:
        normalised = normalise_code(system, code)
        return normalised in exact or (pattern is not None and pattern.search(normalised) is not None)

    def _name(self, raw: bytes) -> bool:
        if self._text is None:
            return False
        known = self._names.get(raw)
        if known is None:
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                return True
            known = self._text.search(name) is not None
            if len(self._names) < _RAW_MEMO_ENTRIES:
                self._names[raw] = known
        return known


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
    raw_cutoff: bytes  # the same day, for the raw scan
    # The value sets the facts classify each type with, for the raw scan.
    raw_conditions: RawConcepts
    raw_labs: RawConcepts
    raw_medications: RawConcepts

    @classmethod
    def for_screen(cls, knowledge: Knowledge, now: datetime) -> Bounds:
        days = max(build_services(knowledge)[PATIENT_VIEW_ID].windows.values())
        cutoff = window_start(days, now) - timedelta(days=1)
        day = cutoff.date().isoformat()
        conditions = RawConcepts([knowledge.valuesets[i] for i in condition_valueset_ids(knowledge)])
        labs = RawConcepts([lab.valueset for lab in knowledge.labs.values()])
        medications = RawConcepts(medication_classifier(knowledge).relevant)
        return cls(knowledge, now, day, day.encode("ascii"), conditions, labs, medications)

    def type_filters(self) -> tuple[str, ...]:
        """The ``_typeFilter`` an export for this screen asks for: Observations dated within the window
        (FHIR ``date`` search on effective[x]), any code and category, so the server's own indexes leave
        out the history, as they do for the REST screen's date-bounded searches. One query per type: a
        server that ANDs several filters of one type (sekmet-fhir does; the specification ORs them)
        still returns every Observation either prefetch search would. Other types are not filtered: the
        prefetch reads them whole."""
        return (f"Observation?date=ge{self.observation_cutoff}",)

    def window_gap(self, observations_from: str | None) -> str | None:
        """Why an export whose Observations start at ``observations_from`` (its ``_typeFilter``) cannot be
        screened at this instant, or None: the window would start before the export's first day, so
        results the rules read could be missing (a card not shown is not a safe default)."""
        if observations_from is None or observations_from[:10] <= self.observation_cutoff:
            return None
        return (
            f"the export holds Observations dated from {observations_from} only (its _typeFilter), but a "
            f"screen at {self.now.date().isoformat()} reads them from {self.observation_cutoff}: export "
            "again, or screen with a later --now"
        )

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
        return not present or any(self._on_or_after_cutoff(d) for d in present)

    def _on_or_after_cutoff(self, day: str) -> bool:
        return day[:10] >= self.observation_cutoff[: len(day[:10])]

    def raw_outside(self, line: bytes) -> str | None:
        """The resource type when the bytes of ``line`` show a record the bounds would drop, else None
        (the line is parsed). Certain, never a guess: the line must be one complete object opening with
        its resourceType, and then either

        - an Observation with no contained resource, a top-level date, and every date found (a superset
          of the ones in_window reads) before the cutoff; or
        - an Observation, a Condition, or a MedicationRequest/Statement naming no Medication by reference,
          with no backslash in the line, none of whose codes and names could match a value set the facts
          classify that type with (:class:`RawConcepts`: the lab kinds, the condition value sets, the
          medication classifier's).
        """
        if not line.rstrip().endswith(b"}"):
            return None
        opening = _RAW_TYPE.match(line)
        if opening is None:
            return None
        rtype = opening.group(1)
        if rtype == b"Observation":
            if self._raw_old_observation(line):
                return "Observation"
            concepts = self.raw_labs
        elif rtype == b"Condition":
            concepts = self.raw_conditions
        elif rtype in (b"MedicationRequest", b"MedicationStatement"):
            if b'"medicationReference"' in line:
                return None  # the Medication it names decides: parsed
            concepts = self.raw_medications
        else:
            return None
        if b"\\" in line or concepts.may_match(line):
            return None
        return rtype.decode("ascii")

    def _raw_old_observation(self, line: bytes) -> bool:
        if b'"contained"' in line:
            return False
        cutoff, top = self.raw_cutoff, False
        for key, value in _RAW_DATES.findall(line):
            # bytes compare as in_window's strings do; a non-ASCII byte sorts after every digit: parsed
            if not value or value[:10] >= cutoff[: len(value[:10])]:
                return False
            top = top or key in _TOP_DATES
        return top

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

    def _device(self, resource: dict[str, Any]) -> bool:
        return device_kind(resource, self.knowledge) is not None


_EMPTY_INDEX = ResourceIndex()
_CHECKS = {
    "Observation": Bounds._observation,
    "MedicationRequest": Bounds._medication_use,
    "MedicationStatement": Bounds._medication_use,
    "Condition": Bounds._condition,
    "ServiceRequest": Bounds._service_request,
    "Device": Bounds._device,
}


@functools.lru_cache(maxsize=4)
def bounds(knowledge: Knowledge, now: datetime) -> Bounds:
    """One ``Bounds`` per knowledge and instant in a process (an executor screens many parts)."""
    return Bounds.for_screen(knowledge, now)
