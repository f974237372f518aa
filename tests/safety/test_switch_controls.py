"""Controls of the insulin switch named by the hazard log (issue 22 E15; the controls are issue 22 A1-A5, B7).

Each test is one hazard's control seen from the card a clinician reads: the risk that sizes the cut, the
rounding, the groups the card must not dose, the held order beside a current analogue, and the steroid
that keeps the dose. Expected doses are worked out by hand from the specification, not from the code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.clinical.switch_dose import applied_percent, new_dose
from cds_hooks.fhir import builders as fhir
from cds_hooks.fhir.builders import ATC, SNOMED
from cds_hooks.hooks.dispatch import evaluate_offline
from tests.builders import bundle, request

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
PID = "safety-switch"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SWITCH_RULES = ("animal-insulin-switch", "insulin-antibody-workup")


def units(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "U", "system": "http://unitsofmeasure.org", "code": "[iU]"}


def insulin(rid: str, atc: str, text: str, dose: float, code: str = "BID", **kwargs: Any) -> dict[str, Any]:
    """A current prescription of ``dose`` units ``code`` (a GTS timing) of the insulin ``atc``."""
    given = {"timing": fhir.timing(code=code), "doseAndRate": [{"doseQuantity": units(dose)}]}
    drug = fhir.concept(fhir.coding(ATC, atc), text=text)
    return fhir.medication_request(PID, rid, drug=drug, authored="2026-05-01", dosage=[given], **kwargs)


def porcine(dose: float = 20, **kwargs: Any) -> dict[str, Any]:
    return insulin("pork", "A10AB03", "Hypurin Porcine Neutral", dose, **kwargs)


def evaluate(*resources: dict[str, Any], birth_date: str = "1960-01-01") -> list[dict[str, Any]]:
    """The patient-view cards for a patient holding ``resources``, at ``NOW``."""
    by_key = {
        "MedicationRequest": "medicationRequests",
        "Observation": "observations",
        "Condition": "conditions",
    }
    prefetch: dict[str, Any] = {"patient": fhir.patient(PID, birth_date=birth_date)}
    for key in by_key.values():
        prefetch[key] = bundle(*(r for r in resources if by_key[r["resourceType"]] == key))
    return evaluate_offline(request(PID, prefetch), now=NOW)["cards"]


def switch_card(cards: list[dict[str, Any]]) -> dict[str, Any]:
    (card,) = [c for c in cards if c["source"]["topic"]["code"] in SWITCH_RULES]
    return card


def actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for s in card.get("suggestions") or [] for a in s.get("actions") or []]


def created(card: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        a["resource"]
        for a in actions(card)
        if a["type"] == "create" and a["resource"]["resourceType"] == resource_type
    ]


def proposed_doses(card: dict[str, Any]) -> list[float]:
    """The units per administration of every human insulin the card proposes."""
    return [
        rate["doseQuantity"]["value"]
        for order in created(card, "MedicationRequest")
        for given in order.get("dosageInstruction") or []
        for rate in given.get("doseAndRate") or []
        if "doseQuantity" in rate
    ]


def text(card: dict[str, Any]) -> str:
    return f"{card['summary']}\n{card.get('detail', '')}"


def glucose(value: float, days_ago: int, rid: str = "glu") -> dict[str, Any]:
    when = f"2026-05-{31 - days_ago + 1:02d}" if days_ago <= 30 else "2026-04-01"
    code = fhir.lab_code("2345-7", "Glucose")
    return fhir.observation(PID, rid, code=code, when=when, value=value, unit="mg/dL")


@pytest.mark.parametrize(
    ("risk", "record", "birth_date", "shown", "reason"),
    [
        ("level 1", [glucose(65, 10)], "1960-01-01", "glucose 65 mg/dL", "glucose below 70 mg/dL"),
        (
            "renal",
            [
                fhir.observation(
                    PID, "egfr", code=fhir.lab_code("62238-1", "eGFR"), when="2026-03-01", value=25,
                    unit="mL/min/{1.73_m2}", ucum="mL/min/{1.73_m2}",
                )
            ],
            "1960-01-01",
            "eGFR 25",
            "eGFR below 30",
        ),
        ("age", [], "1946-01-01", "age 80", "age 75 or over"),
    ],
    ids=["level-1-low", "egfr-25", "age-80"],
)  # fmt: skip
def test_a_hypoglycaemia_risk_factor_takes_the_larger_cut_and_the_card_names_it(
    risk: str, record: list[dict[str, Any]], birth_date: str, shown: str, reason: str
) -> None:
    """Issue 22 A1, A2 (hazard H03): porcine 20 U BID, otherwise the routine 10 % cut (18 U); with the risk
    factor the cut is 20 % (16 U), the card names the patient's value and the order's note the reason."""
    card = switch_card(evaluate(porcine(20), *record, birth_date=birth_date))
    assert proposed_doses(card) == [16], risk
    assert "20 % lower: " + shown in card["detail"]
    (order,) = created(card, "MedicationRequest")
    assert reason in order["note"][0]["text"]


def test_without_a_risk_factor_the_routine_cut_applies() -> None:
    """Issue 22 A2 (hazards H01, H03): the counterpart of the risk tests: 20 U porcine, 10 % off, 18 U."""
    card = switch_card(evaluate(porcine(20)))
    assert proposed_doses(card) == [18]
    assert card["indicator"] == "info"


@pytest.mark.parametrize(
    "record",
    [
        [glucose(50, 5)],
        [
            fhir.condition(
                PID,
                "iah",
                code=fhir.concept(
                    fhir.coding(
                        "https://immune-ir-cds.example.org/fhir/CodeSystem/local-concepts",
                        "impaired-hypoglycaemia-awareness",
                    ),
                    text="Impaired awareness of hypoglycaemia",
                ),
            )
        ],
    ],
    ids=["level-2-low", "impaired-awareness"],
)
def test_level_2_hypoglycaemia_or_impaired_awareness_makes_the_switch_a_warning(record: list) -> None:
    """Issue 22 A2 (hazard H03): a glucose below 54 mg/dL in 30 days, or impaired awareness on the
    record, makes the switch card a warning even without antibody signs, with the larger cut."""
    card = switch_card(evaluate(porcine(20), *record))
    assert card["indicator"] == "warning"
    assert proposed_doses(card) == [16]


@pytest.mark.parametrize(
    ("units_before", "percent", "after", "printed"),
    [
        # 2.7 -> 2.5 cuts 16.7 %, > 10 + 5 points, but rounding up to 3 would leave no cut at all: 2.5
        # stays, within the 20 % the reference allows (§5; issue 22 A2 as read for vignette 337)
        (3, 10, 2.5, 16.7),
        (5, 10, 4.5, 10.0),  # half units below 10 U
        (9, 10, 8.0, 11.1),  # 8.1 -> 8 (half unit below), within 5 points
        (10, 10, 9.0, 10.0),  # whole units from 10 U
        (11, 10, 10.0, 9.1),  # 9.9 -> 9 would cut 18.2 %: up to 10
        (12, 10, 11.0, 8.3),  # 10.8 -> 10 would cut 16.7 %: up to 11
        (3, 20, 2.5, 16.7),  # 2.4 -> 2 would cut 33 %, > 20 + 5: up to 2.5
        (9, 20, 7.0, 22.2),  # 7.2 -> 7
        (20, 20, 16.0, 20.0),
    ],
    ids=lambda v: f"{v:g}",
)
def test_rounding_follows_the_pen_and_never_overshoots_the_cut(
    units_before: float, percent: float, after: float, printed: float
) -> None:
    """Issue 22 A2 (hazard H01): doses below 10 U round down to the half unit, others to whole units; a
    rounding more than 5 points beyond the target rounds up (unless that leaves no cut); the percentage
    printed is the one applied."""
    k = default_knowledge()
    assert new_dose(k, units_before, percent) == after
    assert applied_percent(units_before, after) == printed


@pytest.mark.parametrize(
    ("group", "record", "birth_date", "team"),
    [
        ("child", [], "2017-03-01", "paediatric diabetes team"),
        (
            "pregnancy",
            [fhir.condition(PID, "preg", code=fhir.concept(fhir.coding(SNOMED, "77386006", "Pregnant")))],
            "1992-01-01",
            "diabetes-pregnancy team",
        ),
        (
            "pregnancy test",
            [
                fhir.observation(
                    PID, "pst", code=fhir.lab_code("82810-3", "Pregnancy status"), when="2026-04-01",
                    valueCodeableConcept=fhir.concept(fhir.coding(SNOMED, "77386006", "Pregnant")),
                )
            ],
            "1992-01-01",
            "diabetes-pregnancy team",
        ),
        (
            "dialysis",
            [fhir.condition(PID, "hd", code=fhir.concept(fhir.coding(ICD10CM, "Z99.2", "Renal dialysis")))],
            "1960-01-01",
            "renal and diabetes teams",
        ),
    ],
    ids=["child-9", "pregnancy-condition", "pregnancy-observation", "dialysis"],
)  # fmt: skip
def test_a_group_the_card_must_not_dose_gets_a_referral_and_no_dose(
    group: str, record: list[dict[str, Any]], birth_date: str, team: str
) -> None:
    """Issue 22 A3 (hazard H04): a child of 9, pregnancy by Condition or by a positive pregnancy-status
    Observation, or dialysis: the card still recommends
    the switch and names the team, its suggestion is a referral, and no dose is proposed."""
    card = switch_card(evaluate(porcine(20), *record, birth_date=birth_date))
    assert team in text(card), group
    assert created(card, "ServiceRequest"), group
    assert proposed_doses(card) == [], group


def test_an_insulin_given_as_a_rate_is_a_pump_and_gets_no_dose() -> None:
    """Issue 22 A3 (hazard H04): an insulin whose dosage is a rate (U/h) runs through a pump: no dose."""
    pump = porcine(20)
    pump["dosageInstruction"] = [{"doseAndRate": [{"rateQuantity": {"value": 1, "unit": "U/h"}}]}]
    card = switch_card(evaluate(pump))
    assert "diabetes pump team" in text(card)
    assert proposed_doses(card) == []


def test_a_held_animal_order_beside_a_current_analogue_adds_no_second_basal_insulin() -> None:
    """Issue 22 A5 (hazard H02): porcine isophane on hold plus current glargine 70 U: the switch proposes
    no new insulin, only stopping the held order, and says the patient is already on glargine."""
    held = insulin("pork-nph", "A10AC03", "Hypurin Porcine Isophane", 30, status="on-hold")
    glargine = insulin("glargine", "A10AE04", "Insulin glargine", 70, code="QD")
    card = switch_card(evaluate(held, glargine))
    assert created(card, "MedicationRequest") == []
    assert "already on" in text(card).lower() and "glargine" in text(card).lower()
    stops = [a for a in actions(card) if a["type"] == "update"]
    assert [a["resource"]["id"] for a in stops] == ["pork-nph"]
    assert all(a["resource"]["status"] == "stopped" for a in stops)


def test_high_glucose_on_a_glucocorticoid_keeps_the_dose_and_defers_to_the_steroid_card() -> None:
    """Issue 22 B7 (hazard H05): porcine 20 U BID, prednisolone and glucose 250 mg/dL: the switch keeps
    20 U (no cut while glucose is high on the steroid) and refers to the glucocorticoid card."""
    prednisolone = fhir.medication_request(
        PID,
        "pred",
        drug=fhir.concept(fhir.coding(ATC, "H02AB06", "prednisolone"), text="Prednisolone 20 mg tablets"),
        authored="2026-05-20",
        dosage=[
            {
                "timing": fhir.timing(code="QD"),
                "doseAndRate": [{"doseQuantity": {"value": 20, "unit": "mg", "code": "mg"}}],
            }
        ],
    )
    cards = evaluate(porcine(20), prednisolone, glucose(250, 3))
    assert {c["source"]["topic"]["code"] for c in cards} >= {"glucocorticoid-hyperglycemia"}
    card = switch_card(cards)
    assert proposed_doses(card) == [20]
    assert "glucocorticoid card" in text(card)
