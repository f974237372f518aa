"""Resources a card rests on are validated against FHIR R4 (R4B models), lazily: only the resources a
rule cites are modelled, and an invalid one is set aside (reported as unusable) and the rules rerun."""

from __future__ import annotations

from datetime import UTC, datetime

from cds_hooks.clinical.evaluation import evaluate_index
from cds_hooks.clinical.facts.build import build_facts
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.resource_index import ResourceIndex
from tests.builders import porcine_statement

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_invalid_cited_medication_is_set_aside_and_reported():
    bad = porcine_statement("p", "ms-bad")
    bad["dosage"] = "twice daily"  # Dosage must be an array of objects
    index = ResourceIndex([bad])
    assert evaluate_index(index, patient_id="p", knowledge=default_knowledge(), now=NOW) == {"cards": []}
    assert "not valid FHIR R4" in (index.rejection(bad) or "")
    facts = build_facts(index, default_knowledge(), "p", NOW)
    assert facts.medications == []
    assert [u.kind for u in facts.unusable] == ["medication"]


def test_a_valid_resource_beside_an_invalid_one_still_fires_with_the_invalid_one_reported():
    bad = porcine_statement("p", "ms-bad")
    bad["dosage"] = "twice daily"
    good = porcine_statement("p", "ms-good")
    index = ResourceIndex([bad, good])
    cards = evaluate_index(index, patient_id="p", knowledge=default_knowledge(), now=NOW)["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["animal-insulin-switch"]
    assert "could not be used" in cards[0]["detail"] and "not valid FHIR R4" in cards[0]["detail"]


def test_only_cited_resources_are_modelled():
    unrelated = {
        "resourceType": "Observation",
        "id": "hr",
        "status": "final",
        "code": {"text": "Heart rate"},
        "valueQuantity": {"value": 72},
    }
    index = ResourceIndex([unrelated, porcine_statement("p")])
    evaluate_index(index, patient_id="p", knowledge=default_knowledge(), now=NOW)
    assert list(index._validations) == [id(index.get("MedicationStatement/ms-pork"))]


def test_model_classes_of_every_element_type_load_at_warm_up():
    """fhir.resources imports an element's class on first use; the warm-up loads them all up front."""
    import sys

    from cds_hooks.fhir.resource_index import RULE_ELEMENTS, load_model_classes

    loaded = load_model_classes()
    assert loaded > len(RULE_ELEMENTS) * 5
    for module in ("meta", "narrative", "identifier", "dosage", "timing", "quantity", "reference"):
        assert f"fhir.resources.R4B.{module}" in sys.modules


def test_a_contained_resource_of_an_unknown_type_makes_the_resource_invalid_not_a_crash():
    """fhir.resources answers a contained ``resourceType`` it cannot look up with a KeyError, not a
    ValidationError (a 500 the prefetch fuzz test found): the resource is set aside as invalid."""
    from cds_hooks.fhir.resource_index import validate_read

    for kind in ("", "Nonsense"):
        bad = porcine_statement("p", "ms-bad")
        bad["contained"] = [{"resourceType": kind, "id": "med"}]
        validation, _ = validate_read(bad)
        assert validation.problem == "not valid FHIR R4"
        index = ResourceIndex([bad])
        assert evaluate_index(index, patient_id="p", knowledge=default_knowledge(), now=NOW) == {"cards": []}
        assert "not valid FHIR R4" in (index.rejection(bad) or "")
