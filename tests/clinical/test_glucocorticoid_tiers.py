"""Issue 22 C8, C9 and B7 (the glucocorticoid part): tiers by prednisolone-equivalent mg/day, advice per drug
and regimen, the order card's latest glucose/HbA1c, numbers as clinicians write them.

The edges themselves are vignettes 250–270 (tests/vignettes/README.md); these tests hold the facts, the
knowledge and the wording the rule rests on.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.clinical.cards.lab_display import mg
from cds_hooks.clinical.explain import explain
from cds_hooks.clinical.facts.build import build_facts
from cds_hooks.clinical.facts.dosage import administrations
from cds_hooks.clinical.facts.medications import _fmt
from cds_hooks.clinical.knowledge import KnowledgeError, default_knowledge, load_knowledge
from cds_hooks.clinical.rules import RULES_BY_ID, rule_input
from cds_hooks.clinical.rules.glucocorticoid_hyperglycemia import variant
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.hooks.dispatch import evaluate_offline

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ATC = "http://www.whocc.no/atc"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
CASES = Path(__file__).resolve().parents[1] / "vignettes" / "cases"
KNOWLEDGE = default_knowledge()
GC = "glucocorticoid-hyperglycemia"


def dosage(code: str, mg_dose: float, **extra: Any) -> dict[str, Any]:
    return {
        "timing": {"code": {"coding": [{"system": GTS, "code": code}]}},
        "doseAndRate": [{"doseQuantity": {"value": mg_dose, "unit": "mg", "code": "mg"}}],
        **extra,
    }


def steroid(rid: str, atc: str, name: str, *dosages: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2026-05-20",
        "medicationCodeableConcept": {"text": name, "coding": [{"system": ATC, "code": atc}]},
        "dosageInstruction": list(dosages),
    }


def facts_of(*resources: dict[str, Any]):
    return build_facts(ResourceIndex(list(resources)), KNOWLEDGE, "p", NOW)


def cards_of(case: str) -> list[dict[str, Any]]:
    data = json.loads((CASES / f"{case}.json").read_text())
    return evaluate_offline(data["request"], now=NOW)["cards"]


# --- facts: the regimen -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dosages", "expected"),
    [
        ([dosage("QD", 20)], 1.0),
        ([dosage("BID", 10)], 2.0),
        ([dosage("QAM", 10), dosage("QPM", 5)], 2.0),  # a morning and an evening entry
        ([dosage("QD", 20), dosage("BID", 5, asNeededBoolean=True)], 1.0),  # as needed left out
        ([{"doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}]}], None),  # no timing: unknown
        ([], None),
        (None, None),
    ],
)
def test_administrations_per_day_from_the_dosage(dosages, expected) -> None:
    """Issue 22 C9: the regimen (once or twice daily) is read from the structured dosage, never guessed."""
    assert administrations(dosages) == expected


def test_a_steroid_fact_carries_its_regimen_and_whether_it_acts_all_day() -> None:
    """Issue 22 C9: twice-daily prednisolone and once-daily dexamethasone both keep glucose up overnight."""
    facts = facts_of(
        steroid("pred", "H02AB06", "prednisolone 5 MG Oral Tablet", dosage("BID", 10)),
        steroid("dex", "H02AB02", "dexamethasone 2 MG Oral Tablet", dosage("QD", 4)),
    )
    by_id = {m.evidence.reference: m for m in facts.medications}
    pred, dex = by_id["MedicationRequest/pred"], by_id["MedicationRequest/dex"]
    assert (pred.administrations_per_day, pred.all_day, pred.prednisolone_mg) == (2.0, False, 20.0)
    assert (dex.administrations_per_day, dex.all_day) == (1.0, True)
    assert math.isclose(dex.prednisolone_mg or 0.0, 26.666, rel_tol=1e-3)


# --- numbers as clinicians write them ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"), [(1250.0, "1250"), (1000.0, "1000"), (53.333, "53.3"), (7.5, "7.5"), (1e6, "1000000")]
)
def test_doses_never_show_exponent_notation(value: float, text: str) -> None:
    """Issue 22 C8: "1250 mg/day", never "1.25e+03" (card phrases and evidence lines alike)."""
    assert mg(value) == text
    assert _fmt(value) == text


def test_the_why_this_card_total_has_no_exponent() -> None:
    """Issue 22 C8: the "why this card" table shows hydrocortisone 1250 mg/day as 312.5, methylprednisolone
    1 g as 1250 mg/day prednisolone equivalent."""
    x = rule_input(
        ResourceIndex([steroid("mp", "H02AB04", "methylprednisolone", dosage("QD", 1000))]),
        KNOWLEDGE,
        "p",
        NOW,
    )
    values = [v for row in explain(GC, x).rows for v in row.values]
    assert "Total 1250 mg/day prednisolone equivalent" in values
    assert not any("e+" in v for v in values)


# --- knowledge -------------------------------------------------------------------------------------------


def test_the_new_thresholds_carry_their_sources() -> None:
    """Issue 22 C8: high dose 40 mg/day prednisolone equivalent, pulse 250 mg/day methylprednisolone."""
    high = KNOWLEDGE.thresholds["glucocorticoid_high_dose"]
    pulse = KNOWLEDGE.thresholds["methylprednisolone_pulse"]
    assert (high.value, high.unit) == (40, "mg/day prednisolone equivalent")
    assert (pulse.value, pulse.unit) == (250, "mg/day methylprednisolone")
    assert "needs endocrinologist review" in high.source and "Buttgereit" in pulse.source
    assert {"glucocorticoid_high_dose", "methylprednisolone_pulse", "glucocorticoid_replacement_max"} <= set(
        RULES_BY_ID[GC].thresholds
    )


@pytest.mark.parametrize(
    ("system", "code"),
    [("http://hl7.org/fhir/sid/icd-10-cm", "E23.0"), ("http://snomed.info/sct", "74728003")],
)
def test_hypopituitarism_counts_as_a_replacement_condition(system: str, code: str) -> None:
    """Issue 22 C8: hypopituitarism (ICD-10-CM E23.0, SNOMED CT) is treated like adrenal insufficiency."""
    assert KNOWLEDGE.valuesets["hypopituitarism"].matches_coding(system, code)
    assert KNOWLEDGE.groups["glucocorticoid_replacement"] == {"adrenal-insufficiency", "hypopituitarism"}


def test_only_dexamethasone_is_marked_all_day_and_the_mark_needs_a_source(tmp_path: Path) -> None:
    """Issue 22 C9: the long action is knowledge with its source; a mark without one is refused."""
    assert [e.name for e in KNOWLEDGE.glucocorticoid_equivalents if e.all_day] == ["dexamethasone"]
    import shutil

    root = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE.root, root)
    path = root / "glucocorticoids.toml"
    path.write_text(path.read_text().replace("[prednisolone]\n", "[prednisolone]\nall_day = true\n", 1))
    with pytest.raises(KnowledgeError, match="all_day_source"):
        load_knowledge(root, env={})


# --- the rule and its wording -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "high", "all_day", "name"),
    [
        ("default", False, False, "default"),
        ("default", True, True, "high_all_day"),
        ("order", False, True, "order_all_day"),
        ("order", True, False, "order_high"),
    ],
)
def test_every_variant_the_rule_names_has_its_wording(base, high, all_day, name) -> None:
    """Issue 22 C9: wording per tier and drug lives in knowledge/cards/glucocorticoid-hyperglycemia.toml."""
    assert variant(base, high, all_day) == name
    card = KNOWLEDGE.wording.cards[GC]
    assert name in card.variants
    assert card.variants[name].all_day is all_day
    assert "{steroid_step}" in card.variants[name].detail


def test_the_all_day_variants_propose_fasting_glucose_too() -> None:
    """Issue 22 C9: dexamethasone (case 264) gets the timed test fasting, before lunch and evening meal."""
    (card,) = cards_of("264_gc_dexamethasone_moderate_fasting")
    timings = [
        a["resource"]["occurrenceTiming"]
        for s in card["suggestions"]
        for a in s["actions"]
        if a["resource"]["resourceType"] == "ServiceRequest" and "occurrenceTiming" in a["resource"]
    ]
    assert timings == [{"repeat": {"when": ["ACM", "ACD", "ACV"]}}]


def test_a_high_dose_is_a_warning_even_on_order_select() -> None:
    """Issue 22 C8: methylprednisolone 500 mg (pulse) ordered: warning on order-select (case 268); a
    moderate dose stays info there (case 267)."""
    assert [c["indicator"] for c in cards_of("268_gc_order_select_methylprednisolone_pulse_warning")] == [
        "warning"
    ]
    assert [c["indicator"] for c in cards_of("267_gc_order_select_latest_glucose_and_hba1c")] == ["info"]


def test_the_order_card_shows_the_latest_glucose_and_hba1c_whatever_their_value() -> None:
    """Issue 22 B7: the newest glucose (6.8 mmol/L on 20 May, not the older 9.1) and the newest HbA1c."""
    (card,) = cards_of("267_gc_order_select_latest_glucose_and_hba1c")
    evidence = card["detail"].split("**Evidence**", 1)[1]
    assert "Glucose 6.8 mmol/L" in evidence and "20 May 2026" in evidence
    assert "HbA1c 7.5 %" in evidence
    assert "9.1 mmol/L" not in evidence
