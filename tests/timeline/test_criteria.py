""" "Why this card" is the rules' own verdict: over every example patient, a rule's explanation fires
exactly when the card does, and its required criteria are met exactly then."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cds_hooks.cli.demo import example_bundle, load_manifest
from cds_hooks.clinical.explain import explain
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.clinical.rules import RULES_BY_ID, rule_input
from cds_hooks.fhir.resource_index import ResourceIndex

MANIFEST = load_manifest()
VIGNETTES = Path(__file__).resolve().parents[1] / "vignettes" / "cases"


def index_of(item: dict) -> ResourceIndex:
    bundle = example_bundle(item, manifest=MANIFEST)
    return ResourceIndex([entry["resource"] for entry in bundle["entry"]])


def test_every_rule_declares_its_criteria():
    assert set(RULES_BY_ID) == set(MANIFEST["rule_ids"])
    knowledge = default_knowledge()
    for rule in RULES_BY_ID.values():
        for criterion in rule.criteria:
            assert criterion.role in ("required", "any of", "supports", "against")
            assert all(t in knowledge.thresholds for t in criterion.thresholds), criterion


@pytest.mark.parametrize("item", MANIFEST["examples"], ids=lambda i: i["patient_id"])
def test_explanation_agrees_with_the_cards(item: dict):
    knowledge = default_knowledge()
    x = rule_input(index_of(item), knowledge, item["patient_id"], datetime.now(UTC))
    for rule_id in RULES_BY_ID:
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


def explanation_of(patient_id: str, rule_id: str):
    item = next(i for i in MANIFEST["examples"] if i["patient_id"] == patient_id)
    x = rule_input(index_of(item), default_knowledge(), patient_id, datetime.now(UTC))
    explanation = explain(rule_id, x)
    return {row.label: row for row in explanation.rows}, explanation.fired


def test_replacement_dose_shows_the_total_against_the_replacement_limit():
    rows, fired = explanation_of(
        "ex40", "glucocorticoid-hyperglycemia"
    )  # hydrocortisone 20 mg/day, Addison's
    against = next(r for r in rows.values() if r.role == "against")
    assert not fired and against.met
    assert "Total 5 mg/day prednisolone equivalent" in against.values
    assert [str(t) for t in against.thresholds] == [
        "glucocorticoid replacement max ≤ 7.5 mg/day prednisolone equivalent"
    ]


def test_pending_screening_is_shown_against_the_ataxia_telangiectasia_card():
    rows, fired = explanation_of("ex43", "ataxia-telangiectasia-ir")  # glucose ordered, never screened
    pending = next(r for r in rows.values() if r.role == "against")
    assert not fired and pending.met
    assert any(v.startswith("Pending: Glucose") for v in pending.values)


def test_insulin_autoimmune_syndrome_lists_the_trigger_drug():
    rows, fired = explanation_of("ex39", "insulin-autoimmune-syndrome")  # alpha-lipoic acid
    never = next(r for r in rows.values() if r.by_absence)
    trigger = next(r for r in rows.values() if r.role == "supports")
    assert fired and never.met and not never.values
    assert trigger.met and any("lipoic" in v.lower() for v in trigger.values)


def test_type_b_shows_insulin_autoimmune_syndrome_against_it():
    """Graves' disease, never on insulin, positive insulin antibody, insulin 350: every type B criterion is
    there, and the row against it says why there is no type B card."""
    case = json.loads((VIGNETTES / "166_ias_methimazole_graves.json").read_text())
    prefetch = [value for value in case["request"]["prefetch"].values() if value]
    index = ResourceIndex(
        [v for v in prefetch if v["resourceType"] != "Bundle"]
        + [
            entry["resource"]
            for v in prefetch
            if v["resourceType"] == "Bundle"
            for entry in v.get("entry", [])
        ]
    )
    now = datetime.fromisoformat(case["now"].replace("Z", "+00:00"))
    x = rule_input(index, default_knowledge(), case["request"]["context"]["patientId"], now)
    explanation = explain("type-b-insulin-resistance", x)
    rows = {row.label: row for row in explanation.rows}
    ias = rows["Insulin autoimmune syndrome explains the raised insulin (its card is shown instead)"]
    assert not explanation.fired
    assert ias.role == "against" and ias.met
    assert any("antibod" in v.lower() for v in ias.values), ias.values
    assert rows["Markedly raised insulin level (severe resistance, counts off insulin)"].met
    assert rows["Autoimmune disease (autoimmunity, needed when not confirmed)"].met
    assert explain("insulin-autoimmune-syndrome", x).fired
