"""Medication facts from MedicationStatement and MedicationRequest, coded inline or by reference.

Whether a use is current follows the record's dates as well as its status (issue 16): an active order
too old to be current (``medication_request_current_days``) and a statement whose period ended count as
past exposure. Identical entries (same product, state and dose) are merged into one fact.
"""

from __future__ import annotations

import calendar
import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from cds_hooks.clinical.facts.dosage import administrations, daily_mg, daily_units, given_as_rate
from cds_hooks.clinical.facts.model import Evidence, MedicationUse, UnusableResult
from cds_hooks.clinical.knowledge import GlucocorticoidEquivalent, Knowledge, union
from cds_hooks.fhir.concept_memo import Memo, concept_key
from cds_hooks.fhir.dates import parse_fhir_datetime
from cds_hooks.fhir.json_access import obj, objects, string
from cds_hooks.fhir.resource_index import ResourceIndex, resolve_reference

STATEMENT_CURRENT = frozenset({"active", "intended", "on-hold"})
REQUEST_CURRENT = frozenset({"active", "on-hold"})
PAST = frozenset({"completed", "stopped"})

# Checked in this order: a premixed insulin also mentions its intermediate component.
PROFILES = ("premixed", "long", "intermediate", "rapid-short")
SPECIES = ("bovine", "porcine")  # the animal sources of insulin, in order of precedence

# A strength printed in a product name: "prednisoLONE 5 MG Oral Tablet" (not "5 MG/ML", a liquid).
_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(mg|mcg|µg|g)\b(?!\s*/)", re.IGNORECASE)
_STRENGTH_MG = {"mg": 1.0, "mcg": 0.001, "µg": 0.001, "g": 1000.0}
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def _referenced_medication(resource: dict[str, Any], index: ResourceIndex) -> dict[str, Any] | None:
    reference = obj(resource.get("medicationReference")).get("reference")
    medication = resolve_reference(index, resource, reference)
    return medication if isinstance(medication, dict) else None


def medication_concepts(resource: dict[str, Any], index: ResourceIndex) -> list[dict[str, Any]]:
    """The CodeableConcepts that name what was taken: the inline code, or the referenced Medication's
    code and ingredients (contained ``#id``, or a Medication in the prefetch / fetched by reference)."""
    concepts: list[dict[str, Any]] = []
    inline = resource.get("medicationCodeableConcept")
    if isinstance(inline, dict):
        concepts.append(inline)
    reference = resource.get("medicationReference")
    if isinstance(reference, dict):
        medication = _referenced_medication(resource, index)
        if medication is not None:
            if isinstance(medication.get("code"), dict):
                concepts.append(medication["code"])
            for ingredient in objects(medication.get("ingredient")):
                item = ingredient.get("itemCodeableConcept") if isinstance(ingredient, dict) else None
                if isinstance(item, dict):
                    concepts.append(item)
        elif isinstance(reference.get("display"), str):
            concepts.append({"text": reference["display"]})
    return concepts


def _name(concepts: list[dict[str, Any]]) -> str:
    for concept in concepts:
        if isinstance(concept.get("text"), str) and concept["text"]:
            return concept["text"]
        for coding in objects(concept.get("coding")):
            if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                return coding["display"]
    for concept in concepts:
        for coding in objects(concept.get("coding")):
            if isinstance(coding, dict) and coding.get("code"):
                return f"{coding.get('code')}"
    return "unnamed medication"


def _texts(concepts: list[dict[str, Any]]) -> list[str]:
    texts = [c.get("text") for c in concepts]
    texts += [coding.get("display") for c in concepts for coding in objects(c.get("coding"))]
    return [t for t in texts if isinstance(t, str) and t]


@dataclass(frozen=True)
class ConceptClass:
    animal_insulin: bool
    insulin: bool
    profile: str | None
    glucocorticoid: bool  # by the concepts (systemic product); the route is checked per use
    equivalent: GlucocorticoidEquivalent | None  # which glucocorticoid, for the prednisolone equivalent
    insulin_autoimmune_trigger: bool  # a sulfhydryl-group drug known to trigger insulin autoimmune syndrome
    species: str | None = None  # an animal insulin's "bovine" or "porcine", when its product says
    insulin_secretagogue: bool = False  # a sulfonylurea or meglitinide (issue 22 D11)


NOT_RELEVANT = ConceptClass(
    animal_insulin=False,
    insulin=False,
    profile=None,
    glucocorticoid=False,
    equivalent=None,
    insulin_autoimmune_trigger=False,
)


class MedicationClassifier:
    """Classifies medication concepts with the knowledge's value sets."""

    def __init__(self, knowledge: Knowledge):
        vs = knowledge.valuesets
        self.animal = vs["insulin-animal"]
        self.human = vs["insulin-human-or-analogue"]
        self.insulin = vs["insulin-any"]
        self.steroid = vs["glucocorticoid-systemic"]
        self.steroid_non_systemic_form = vs["glucocorticoid-non-systemic-form"]
        self.non_systemic_route = vs["route-non-systemic"]
        self.triggers = vs["insulin-autoimmune-triggers"]
        self.secretagogues = vs["insulin-secretagogues"]
        self.equivalents = knowledge.glucocorticoid_equivalents
        self.profiles = {p: vs[f"insulin-{p}"] for p in PROFILES}
        # Bovine first: a mixed beef/pork product is treated as bovine (the larger dose reduction).
        self.species_sets = tuple(
            (name, vs[f"insulin-{name}"]) for name in SPECIES if f"insulin-{name}" in vs
        )
        self._memo: Memo[ConceptClass] = Memo(self._classify)
        # What every positive classification starts from (an animal insulin is in insulin-any too); a
        # concept none of them matches is NOT_RELEVANT (the bulk screen's raw scan reads the same list).
        self.relevant = (self.animal, self.insulin, self.steroid, self.triggers, self.secretagogues)
        self._any_of = union(self.relevant)

    def _by_code(self, valueset: Any, concepts: list[dict[str, Any]]) -> bool:
        return any(
            valueset.matches_coding(c.get("system"), c.get("code"))
            for concept in concepts
            for c in objects(concept.get("coding"))
            if isinstance(c, dict)
        )

    def _by_text(self, valueset: Any, concepts: list[dict[str, Any]]) -> bool:
        return any(valueset.matches_text(t) for t in _texts(concepts))

    def classify(self, concepts: list[dict[str, Any]]) -> ConceptClass:
        """Everything the concepts alone decide, memoised per distinct set of concepts."""
        return self._memo.get(tuple(concept_key(c) for c in concepts), concepts)

    def _classify(self, concepts: list[dict[str, Any]]) -> ConceptClass:
        if not any(self._any_of.matches_concept(c) for c in concepts):
            return NOT_RELEVANT
        animal = self.is_animal_insulin(concepts)
        insulin = animal or self.is_insulin(concepts)
        steroid = any(self.steroid.matches_concept(c) for c in concepts) and not any(
            self.steroid_non_systemic_form.matches_concept(c) for c in concepts
        )
        return ConceptClass(
            animal_insulin=animal,
            insulin=insulin,
            profile=self.profile(concepts) if insulin else None,
            glucocorticoid=steroid,
            equivalent=self.equivalent(concepts) if steroid else None,
            insulin_autoimmune_trigger=any(self.triggers.matches_concept(c) for c in concepts),
            species=self.species(concepts) if animal else None,
            insulin_secretagogue=any(self.secretagogues.matches_concept(c) for c in concepts),
        )

    def species(self, concepts: list[dict[str, Any]]) -> str | None:
        """``bovine``, ``porcine`` or None (not recorded), from the product's codes and names."""
        for name, valueset in self.species_sets:
            if any(valueset.matches_concept(c) for c in concepts):
                return name
        return None

    def is_animal_insulin(self, concepts: list[dict[str, Any]]) -> bool:
        """ATC/RxNorm codes decide first; text (pork, beef, Hypurin, …) only when no code says human or
        analogue, and never when the text itself names a human insulin or analogue."""
        if self._by_code(self.animal, concepts):
            return True
        if not self._by_text(self.animal, concepts):
            return False
        return not (self._by_code(self.human, concepts) or self._by_text(self.human, concepts))

    def is_insulin(self, concepts: list[dict[str, Any]]) -> bool:
        return any(self.insulin.matches_concept(c) for c in concepts)

    def profile(self, concepts: list[dict[str, Any]]) -> str | None:
        for name, valueset in self.profiles.items():
            if self._by_code(valueset, concepts):
                return name
        for name, valueset in self.profiles.items():
            if self._by_text(valueset, concepts):
                return name
        return None

    def equivalent(self, concepts: list[dict[str, Any]]) -> GlucocorticoidEquivalent | None:
        """The glucocorticoid of the equivalence table the concepts name: by code first, then by name."""
        codings = [c for concept in concepts for c in objects(concept.get("coding")) if isinstance(c, dict)]
        for equivalent in self.equivalents:
            if any(equivalent.matches_coding(c.get("system"), c.get("code")) for c in codings):
                return equivalent
        texts = _texts(concepts)
        for equivalent in self.equivalents:
            if any(equivalent.matches_text(t) for t in texts):
                return equivalent
        return None

    def is_systemic_glucocorticoid(self, concepts: list[dict[str, Any]], dosages: list[Any]) -> bool:
        """A glucocorticoid by its concepts, not in a local form, and given by no local route."""
        if not self.classify(concepts).glucocorticoid:
            return False
        for dosage in dosages:
            if not isinstance(dosage, dict):
                continue
            route = dosage.get("route")
            if isinstance(route, dict) and self.non_systemic_route.matches_concept(route):
                return False
            if self.non_systemic_route.matches_text(dosage.get("text")):
                return False
        return True


@functools.lru_cache(maxsize=8)
def medication_classifier(knowledge: Knowledge) -> MedicationClassifier:
    """One classifier per knowledge (``Knowledge`` hashes by identity), shared by every request."""
    return MedicationClassifier(knowledge)


def _strength_mg(
    resource: dict[str, Any], index: ResourceIndex, concepts: list[dict[str, Any]]
) -> float | None:
    """mg per tablet: ``Medication.ingredient.strength`` (mg per 1 unit), else one strength printed in the
    product's name ("5 MG Oral Tablet"). None when absent or ambiguous."""
    medication = _referenced_medication(resource, index)
    strengths: set[float] = set()
    for ingredient in objects(medication.get("ingredient")) if medication else []:
        ratio = obj(ingredient.get("strength"))
        numerator, denominator = obj(ratio.get("numerator")), obj(ratio.get("denominator"))
        value = _finite(numerator.get("value"))
        unit = (string(numerator.get("code")) or string(numerator.get("unit")) or "").lower()
        per = _finite(denominator.get("value", 1))
        if value is not None and value > 0 and unit in _STRENGTH_MG and per == 1:
            strengths.add(value * _STRENGTH_MG[unit])
    if not strengths:
        for text in _texts(concepts):
            for number, unit in _STRENGTH.findall(text):
                strengths.add(float(number) * _STRENGTH_MG[unit.lower()])
    return strengths.pop() if len(strengths) == 1 else None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _first_day(value: Any) -> date | None:
    when = parse_fhir_datetime(value)
    return when.date() if when else None


def _last_day(value: Any) -> date | None:
    """The last day a FHIR date covers: "2004" is 2004-12-31, "2004-06" is 2004-06-30."""
    partial = _PARTIAL_DATE.match(value) if isinstance(value, str) else None
    if partial:
        year, month = int(partial.group(1)), int(partial.group(2) or 12)
        return date(year, month, calendar.monthrange(year, month)[1]) if 1 <= month <= 12 else None
    return _first_day(value)


@dataclass(frozen=True)
class Currency:
    """Whether a use is current or past by its status and dates, and when a past one ended."""

    current: bool
    past: bool
    ended: date | None = None  # last day of a past use, when the record says
    stale_year: int | None = None  # an active order too old to count as current: the year it is from


def statement_currency(resource: dict[str, Any], today: date) -> Currency | None:
    status = string(resource.get("status"))
    period = obj(resource.get("effectivePeriod"))
    end = _last_day(period.get("end"))
    if status in STATEMENT_CURRENT:
        if end is not None and end < today:
            return Currency(current=False, past=True, ended=end)  # the period the statement covers ended
        return Currency(current=True, past=False)
    if status in PAST:
        return Currency(current=False, past=True, ended=end or _last_day(resource.get("effectiveDateTime")))
    return None  # entered-in-error, not-taken, unknown: never count


def request_currency(resource: dict[str, Any], today: date, current_days: float) -> Currency | None:
    status = string(resource.get("status"))
    validity = obj(obj(resource.get("dispenseRequest")).get("validityPeriod"))
    start, end = _first_day(validity.get("start")), _last_day(validity.get("end"))
    authored = _first_day(resource.get("authoredOn"))
    ended = end or authored
    if status in PAST:
        return Currency(current=False, past=True, ended=ended)
    if status not in REQUEST_CURRENT:
        return None  # entered-in-error, cancelled, draft, unknown: never count
    if start is not None or end is not None:
        if start is not None and start > today:
            return None  # not valid yet
        if end is None or end >= today:
            return Currency(current=True, past=False)
    elif authored is None or authored >= today - timedelta(days=current_days):
        return Currency(current=True, past=False)  # with no date nothing shows it is stale
    year = (authored or start or end or today).year
    return Currency(current=False, past=True, ended=ended, stale_year=year)


def _fmt(value: float) -> str:
    """A dose as clinicians write it: at most one decimal, never exponent notation ("1250", "7.5")."""
    text = f"{round(value, 1):.1f}"
    return text[:-2] if text.endswith(".0") else text


def _state_text(currency: Currency, state: str | None) -> str:
    if state:
        return state
    if currency.stale_year is not None:
        return f"active order from {currency.stale_year}: check whether still taken"
    if currency.current:
        return "current"
    return f"past, ended {currency.ended.isoformat()}" if currency.ended else "past, end date unknown"


def classify_use(
    resource: dict[str, Any],
    index: ResourceIndex,
    classifier: MedicationClassifier,
    *,
    currency: Currency,
    unusable: list[UnusableResult] | None = None,
    state: str | None = None,
) -> MedicationUse | None:
    """Classify one MedicationStatement/MedicationRequest (or a draft order); ``None`` when it is neither
    an insulin, a systemic glucocorticoid nor a known trigger of insulin autoimmune syndrome, or when it
    is not valid FHIR R4 (then reported)."""
    rtype = resource.get("resourceType")
    concepts = medication_concepts(resource, index)
    if not concepts:
        return None
    dosages = resource.get("dosage" if rtype == "MedicationStatement" else "dosageInstruction")
    dosages = dosages if isinstance(dosages, list) else []
    kind = classifier.classify(concepts)
    animal, insulin = kind.animal_insulin, kind.insulin
    steroid = kind.glucocorticoid and classifier.is_systemic_glucocorticoid(concepts, dosages)
    if not (insulin or steroid or kind.insulin_autoimmune_trigger or kind.insulin_secretagogue):
        return None
    name = _name(concepts)
    rid = resource.get("id")
    reference = f"{rtype}/{rid}" if isinstance(rid, str) else ""
    invalid = index.rejection(resource)
    if invalid:
        if unusable is not None:
            unusable.append(UnusableResult("medication", invalid, Evidence(reference, f"{name} ({rtype})")))
        return None
    units = daily_units(dosages) if insulin else None
    mg = daily_mg(dosages, _strength_mg(resource, index, concepts)) if steroid else None
    equivalent = kind.equivalent if steroid else None
    prednisolone = equivalent.prednisolone_mg(mg) if equivalent and mg is not None else None
    dose_text = f", {units:g} U/day" if units is not None else ""
    if steroid:
        dose_text = f", {_fmt(mg)} mg/day" if mg is not None else ", daily dose unknown"
        if prednisolone is not None and equivalent and equivalent.name != "prednisolone":
            dose_text += f" = prednisolone {_fmt(prednisolone)} mg/day"
    return MedicationUse(
        current=currency.current,
        past=currency.past,
        animal_insulin=animal,
        insulin=insulin,
        systemic_glucocorticoid=steroid,
        insulin_profile=kind.profile,
        daily_units=units,
        name=name,
        evidence=Evidence(
            reference,
            f"{name} ({rtype}, {resource.get('status')}, {_state_text(currency, state)}{dose_text})",
        ),
        ended=currency.ended,
        stale_year=currency.stale_year,
        daily_mg=mg,
        prednisolone_mg=prednisolone,
        glucocorticoid=equivalent.name if equivalent else None,
        administrations_per_day=administrations(dosages) if steroid else None,
        all_day=bool(equivalent and equivalent.all_day),
        insulin_autoimmune_trigger=kind.insulin_autoimmune_trigger,
        insulin_secretagogue=kind.insulin_secretagogue,
        status=resource.get("status") if isinstance(resource.get("status"), str) else None,
        held=resource.get("status") == "on-hold",
        pump=insulin and given_as_rate(dosages),
        species=kind.species,
        source=resource,
    )


def _merge(uses: list[tuple[MedicationUse, Any]]) -> list[MedicationUse]:
    """One fact per distinct (product, state, dose): copies become ``duplicates`` of the first (a
    MedicationRequest is preferred as the fact's resource, since a card may act on it)."""
    groups: dict[Any, list[MedicationUse]] = {}
    for use, key in uses:
        groups.setdefault(key, []).append(use)
    merged: list[MedicationUse] = []
    for copies in groups.values():
        if len(copies) == 1:
            merged.append(copies[0])
            continue
        first = next((u for u in copies if u.evidence.reference.startswith("MedicationRequest/")), copies[0])
        others = tuple(u.evidence.reference for u in copies if u is not first and u.evidence.reference)
        text = first.evidence.text[:-1] + f", recorded {len(copies)} times)"
        merged.append(
            dataclasses.replace(first, duplicates=others, evidence=Evidence(first.evidence.reference, text))
        )
    return merged


def collect_medications(
    index: ResourceIndex,
    knowledge: Knowledge,
    now: datetime,
    classifier: MedicationClassifier | None = None,
    unusable: list[UnusableResult] | None = None,
) -> list[MedicationUse]:
    """Classified medication uses from the patient's record. A relevant resource that is not valid FHIR
    R4 is not used: it is appended to ``unusable`` (shown on cards) instead."""
    classifier = classifier or medication_classifier(knowledge)
    today = now.date()
    current_days = knowledge.threshold("medication_request_current_days")
    uses: list[tuple[MedicationUse, Any]] = []
    for rtype in ("MedicationStatement", "MedicationRequest"):
        for resource in index.of_type(rtype):
            concepts = medication_concepts(resource, index)
            if not concepts or classifier.classify(concepts) is NOT_RELEVANT:
                continue  # most of a record: one memo look-up, before any date or dose is read
            if rtype == "MedicationStatement":
                currency = statement_currency(resource, today)
            else:
                currency = request_currency(resource, today, current_days)
            if currency is None:
                continue
            use = classify_use(resource, index, classifier, currency=currency, unusable=unusable)
            if use is not None:
                product = tuple(concept_key(c) for c in concepts)
                key = (product, currency, use.daily_units, use.daily_mg)
                uses.append((use, key))
    return _merge(uses)
