"""Medication facts from MedicationStatement and MedicationRequest, coded inline or by reference."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from cds_hooks.clinical.facts.dosage import daily_units
from cds_hooks.clinical.facts.model import Evidence, MedicationUse, UnusableResult
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.concept_memo import Memo, concept_key
from cds_hooks.fhir.json_access import objects, string
from cds_hooks.fhir.resource_index import ResourceIndex, resolve_reference

STATEMENT_CURRENT = frozenset({"active", "intended", "on-hold"})
REQUEST_CURRENT = frozenset({"active", "on-hold"})
PAST = frozenset({"completed", "stopped"})

# Checked in this order: a premixed insulin also mentions its intermediate component.
PROFILES = ("premixed", "long", "intermediate", "rapid-short")


def medication_concepts(resource: dict[str, Any], index: ResourceIndex) -> list[dict[str, Any]]:
    """The CodeableConcepts that name what was taken: the inline code, or the referenced Medication's
    code and ingredients (contained ``#id``, or a Medication in the prefetch / fetched by reference)."""
    concepts: list[dict[str, Any]] = []
    inline = resource.get("medicationCodeableConcept")
    if isinstance(inline, dict):
        concepts.append(inline)
    reference = resource.get("medicationReference")
    if isinstance(reference, dict):
        medication = resolve_reference(index, resource, reference.get("reference"))
        if isinstance(medication, dict):
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


@dataclass(frozen=True)
class ConceptClass:
    animal_insulin: bool
    insulin: bool
    profile: str | None
    glucocorticoid: bool  # by the concepts (systemic product); the route is checked per use


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
        self.profiles = {p: vs[f"insulin-{p}"] for p in PROFILES}
        self._memo: Memo[ConceptClass] = Memo(self._classify)

    def _by_code(self, valueset: Any, concepts: list[dict[str, Any]]) -> bool:
        return any(
            valueset.matches_coding(c.get("system"), c.get("code"))
            for concept in concepts
            for c in objects(concept.get("coding"))
            if isinstance(c, dict)
        )

    def _by_text(self, valueset: Any, concepts: list[dict[str, Any]]) -> bool:
        texts = [concept.get("text") for concept in concepts]
        texts += [
            c.get("display")
            for concept in concepts
            for c in objects(concept.get("coding"))
            if isinstance(c, dict)
        ]
        return any(valueset.matches_text(t) for t in texts if isinstance(t, str))

    def classify(self, concepts: list[dict[str, Any]]) -> ConceptClass:
        """Everything the concepts alone decide, memoised per distinct set of concepts."""
        return self._memo.get(tuple(concept_key(c) for c in concepts), concepts)

    def _classify(self, concepts: list[dict[str, Any]]) -> ConceptClass:
        animal = self.is_animal_insulin(concepts)
        insulin = animal or self.is_insulin(concepts)
        return ConceptClass(
            animal_insulin=animal,
            insulin=insulin,
            profile=self.profile(concepts) if insulin else None,
            glucocorticoid=any(self.steroid.matches_concept(c) for c in concepts)
            and not any(self.steroid_non_systemic_form.matches_concept(c) for c in concepts),
        )

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


def classify_use(
    resource: dict[str, Any],
    index: ResourceIndex,
    classifier: MedicationClassifier,
    *,
    current: bool,
    past: bool,
    unusable: list[UnusableResult] | None = None,
    state: str | None = None,
) -> MedicationUse | None:
    """Classify one MedicationStatement/MedicationRequest (or a draft order); ``None`` when it is neither
    an insulin nor a systemic glucocorticoid, or when it is not valid FHIR R4 (then reported)."""
    rtype = resource.get("resourceType")
    concepts = medication_concepts(resource, index)
    if not concepts:
        return None
    dosages = resource.get("dosage" if rtype == "MedicationStatement" else "dosageInstruction")
    dosages = dosages if isinstance(dosages, list) else []
    kind = classifier.classify(concepts)
    animal, insulin = kind.animal_insulin, kind.insulin
    steroid = kind.glucocorticoid and classifier.is_systemic_glucocorticoid(concepts, dosages)
    if not (insulin or steroid):
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
    state = state or ("current" if current else "past" if past else str(resource.get("status")))
    dose_text = f", {units:g} U/day" if units is not None else ""
    return MedicationUse(
        current=current,
        past=past,
        animal_insulin=animal,
        insulin=insulin,
        systemic_glucocorticoid=steroid,
        insulin_profile=kind.profile,
        daily_units=units,
        name=name,
        evidence=Evidence(reference, f"{name} ({rtype}, {resource.get('status')}, {state}{dose_text})"),
    )


def collect_medications(
    index: ResourceIndex,
    knowledge: Knowledge,
    classifier: MedicationClassifier | None = None,
    unusable: list[UnusableResult] | None = None,
) -> list[MedicationUse]:
    """Classified medication uses from the patient's record. A relevant resource that is not valid FHIR
    R4 is not used: it is appended to ``unusable`` (shown on cards) instead."""
    classifier = classifier or medication_classifier(knowledge)
    uses: list[MedicationUse] = []
    for rtype, current_statuses in (
        ("MedicationStatement", STATEMENT_CURRENT),
        ("MedicationRequest", REQUEST_CURRENT),
    ):
        for resource in index.of_type(rtype):
            status = string(resource.get("status"))
            current = status in current_statuses
            past = status in PAST
            if not (current or past):
                continue  # entered-in-error, not-taken, cancelled, draft, unknown: never count
            use = classify_use(resource, index, classifier, current=current, past=past, unusable=unusable)
            if use is not None:
                uses.append(use)
    return uses
