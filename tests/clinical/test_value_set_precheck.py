"""The value-set pre-check (``union``) that lets a memo miss skip every value set: it may say "might
match" too often, never too rarely, so a classification with it equals one without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_hooks.clinical.facts.conditions import condition_memo, condition_valueset_ids
from cds_hooks.clinical.facts.medications import NOT_RELEVANT, medication_classifier
from cds_hooks.clinical.knowledge import Knowledge, default_knowledge, union
from cds_hooks.hooks.example_files import examples_dir


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return default_knowledge()


def _example_concepts() -> list[dict]:
    """Every code, medication and route concept of the shipped example patients."""
    concepts = []
    for path in sorted(Path(examples_dir()).glob("*.json")):
        bundle = json.loads(path.read_text())
        for entry in bundle.get("entry", []) if isinstance(bundle, dict) else []:
            resource = entry.get("resource", {})
            for key in ("code", "medicationCodeableConcept"):
                if isinstance(resource.get(key), dict):
                    concepts.append(resource[key])
    return concepts


EXAMPLES = _example_concepts()
UNRELATED = [
    {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    {"coding": [{"system": "http://snomed.info/sct", "code": "44465007"}], "text": "Sprain of ankle"},
    {"text": "Lisinopril 10 MG Oral Tablet"},
]


def test_examples_cover_matching_and_unrelated_concepts(k):
    vs = [k.valuesets[i] for i in condition_valueset_ids(k)]
    assert any(v.matches_concept(c) for c in EXAMPLES for v in vs)
    assert len(EXAMPLES) > 50


def test_never_misses_a_concept_a_value_set_matches(k):
    """Every value set, alone and all together: whenever one matches, the pre-check lets it through."""
    everything = union(k.valuesets.values())
    alone = {vs.id: union([vs]) for vs in k.valuesets.values()}
    matched = 0
    for concept in EXAMPLES + UNRELATED:
        for valueset in k.valuesets.values():
            if valueset.matches_concept(concept):
                matched += 1
                assert alone[valueset.id].matches_concept(concept), (valueset.id, concept)
                assert everything.matches_concept(concept), (valueset.id, concept)
    assert matched > 20


def test_unrelated_concepts_are_skipped(k):
    conditions = union(k.valuesets[i] for i in condition_valueset_ids(k))
    assert not any(conditions.matches_concept(c) for c in UNRELATED)
    assert medication_classifier(k)._classify([UNRELATED[2]]) is NOT_RELEVANT


texts = st.text(alphabet=st.sampled_from(list("abcdeilnoprstuIHNSDT -0123456789")), max_size=30)
codes = st.sampled_from(["E11.9", "e119", "M32.9", "H02AB07", "A10AB01", "312615", "8867-4", " 44465007 "])
systems = st.sampled_from(
    [
        "http://snomed.info/sct",
        "http://hl7.org/fhir/sid/icd-10-cm",
        "http://www.whocc.no/atc",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "http://loinc.org",
    ]
)
concepts = st.fixed_dictionaries(
    {
        "coding": st.lists(
            st.fixed_dictionaries({"system": systems, "code": codes, "display": texts}), max_size=2
        )
    },
    optional={
        "text": st.one_of(texts, st.sampled_from(["Hypurin Porcine", "prednisolone", "SLE", "diabetes"]))
    },
)


@settings(max_examples=200, deadline=None)
@given(concept=concepts)
def test_classification_is_the_same_with_the_pre_check(concept):
    k = default_knowledge()
    ids = condition_valueset_ids(k)
    memo = condition_memo(k)
    assert memo._compute(concept) == frozenset(i for i in ids if k.valuesets[i].matches_concept(concept))
    classifier = medication_classifier(k)
    with_check = classifier._classify([concept])
    if with_check is NOT_RELEVANT:
        assert not classifier.is_insulin([concept])
        assert not classifier.is_animal_insulin([concept])
        assert not any(classifier.steroid.matches_concept(c) for c in [concept])
        assert not classifier.triggers.matches_concept(concept)
