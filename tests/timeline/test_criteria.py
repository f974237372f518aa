""" "Why this card" is the rules' own verdict: over every example patient, a rule's explanation fires
exactly when the card does, and its required criteria are met exactly then."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_hooks.cli.demo import example_bundle, load_manifest
from cds_hooks.clinical.criteria import CRITERIA, RULES, explain
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.clinical.rules import rule_input
from cds_hooks.fhir.resource_index import ResourceIndex

MANIFEST = load_manifest()


def index_of(item: dict) -> ResourceIndex:
    bundle = example_bundle(item, manifest=MANIFEST)
    return ResourceIndex([entry["resource"] for entry in bundle["entry"]])


def test_every_rule_declares_its_criteria():
    assert set(CRITERIA) == set(RULES) == set(MANIFEST["rule_ids"])
    knowledge = default_knowledge()
    for criteria in CRITERIA.values():
        for criterion in criteria:
            assert criterion.role in ("required", "any of", "supports", "against")
            assert all(t in knowledge.thresholds for t in criterion.thresholds), criterion


@pytest.mark.parametrize("item", MANIFEST["examples"], ids=lambda i: i["patient_id"])
def test_explanation_agrees_with_the_cards(item: dict):
    knowledge = default_knowledge()
    x = rule_input(index_of(item), knowledge, item["patient_id"], datetime.now(UTC))
    for rule_id in CRITERIA:
        explanation = explain(rule_id, x)
        assert explanation.fired == (rule_id in item["expected_rules"]), rule_id
        required = [row.met for row in explanation.rows if row.role == "required"]
        if explanation.fired:
            assert all(required), (rule_id, explanation.rows)
            if any(row.role == "any of" for row in explanation.rows):
                assert any(row.met for row in explanation.rows if row.role == "any of"), rule_id
        for row in explanation.rows:
            if row.met and row.role != "against" and not row.by_absence:
                assert row.values, row  # a met criterion shows the patient's value


def test_an_unknown_rule_is_refused():
    x = rule_input(ResourceIndex(), default_knowledge(), "p", datetime.now(UTC))
    with pytest.raises(KeyError):
        explain("no-such-rule", x)
