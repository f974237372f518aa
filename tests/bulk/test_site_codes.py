"""The site ConceptMap (``CDS_HOOKS_SITE_CONCEPT_MAP``): a local code mapped to a LOINC code the
knowledge lists is read by the rules like the LOINC code, by the service and by the bulk screen (their
shared ``load_knowledge``); a bad file stops the loading with its name."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cds_hooks.bulk.prefilter import Bounds
from cds_hooks.clinical.facts.labs import lab_classifier
from cds_hooks.clinical.knowledge import KnowledgeError, load_knowledge

LOCAL = "https://lab.example-hospital.org/codes"
GLUCOSE = {"system": LOCAL, "code": "GLU-S"}


def concept_map(tmp_path, equivalence="equivalent"):
    path = tmp_path / "site-map.json"
    path.write_text(json.dumps({
        "resourceType": "ConceptMap", "status": "draft",
        "group": [{"source": LOCAL, "target": "http://loinc.org",
                   "element": [{"code": "GLU-S", "display": "Glucose serum",
                                "target": [{"code": "2345-7", "equivalence": equivalence}]}]}],
    }))  # fmt: skip
    return path


def test_a_mapped_local_code_is_read_as_its_loinc_target(tmp_path):
    plain = load_knowledge(env={})
    mapped = load_knowledge(env={"CDS_HOOKS_SITE_CONCEPT_MAP": str(concept_map(tmp_path))})
    code = {"coding": [GLUCOSE]}
    assert lab_classifier(plain).kind_of(code) is None
    assert lab_classifier(mapped).kind_of(code) == "glucose"
    observation = {"resourceType": "Observation", "status": "final", "code": code,
                   "effectiveDateTime": "2026-11-20"}  # fmt: skip
    assert Bounds.for_screen(mapped, datetime(2026, 11, 27, tzinfo=UTC)).keep("Observation", observation)


def test_a_mapping_that_is_not_an_equivalence_is_not_applied(tmp_path):
    knowledge = load_knowledge(env={"CDS_HOOKS_SITE_CONCEPT_MAP": str(concept_map(tmp_path, "wider"))})
    assert lab_classifier(knowledge).kind_of({"coding": [GLUCOSE]}) is None


def test_an_unreadable_site_map_stops_the_loading_with_its_name(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(KnowledgeError, match=r"broken\.json"):
        load_knowledge(env={"CDS_HOOKS_SITE_CONCEPT_MAP": str(path)})
