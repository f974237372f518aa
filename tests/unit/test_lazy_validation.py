"""Resources a rule relies on are validated against FHIR R4 (R4B models), lazily, and an invalid one is
reported as unusable instead of firing a card; unrelated resources are never modelled."""

from __future__ import annotations

from datetime import UTC, datetime

from cds_hooks.evaluation import evaluate_index
from cds_hooks.facts.build import build_facts
from cds_hooks.knowledge import default_knowledge
from cds_hooks.resource_index import ResourceIndex
from tests.builders import porcine_statement

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_invalid_relevant_medication_is_reported_not_used():
    bad = porcine_statement("p")
    bad["dosage"] = "twice daily"  # Dosage must be an array of objects
    index = ResourceIndex([bad])
    facts = build_facts(index, default_knowledge(), "p", NOW)
    assert facts.medications == []
    assert [u.kind for u in facts.unusable] == ["medication"]
    assert "not valid FHIR R4" in facts.unusable[0].reason
    assert evaluate_index(index, patient_id="p", knowledge=default_knowledge(), now=NOW) == {"cards": []}


def test_unrelated_resources_are_not_validated():
    unrelated = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Heart rate"},
        "valueQuantity": {"value": "not a number"},
    }
    index = ResourceIndex([unrelated, porcine_statement("p")])
    build_facts(index, default_knowledge(), "p", NOW)
    assert id(unrelated) not in index._problems  # never modelled
    assert len(index._problems) == 1
