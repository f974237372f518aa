"""order-select / order-sign services (checklist §1.4 contexts; O4/O5 actions; issue: order hooks)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.builders import ATC, LOINC, UCUM, bundle, empty_prefetch, glucose, topics, transaction

SELECT_URL = "/cds-services/insulin-order-select"
SIGN_URL = "/cds-services/insulin-order-sign"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
DOSAGE = [
    {
        "text": "12 units three times daily with meals",
        "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 12, "unit": "U", "system": UCUM, "code": "[iU]"}}],
    }
]


def draft(rid: str, pid: str, concept: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
    }
    if concept is not None:
        resource["medicationCodeableConcept"] = concept
    resource.update(extra)
    return resource


PORK = {"coding": [{"system": ATC, "code": "A10AB03"}], "text": "Hypurin Porcine Neutral"}
HUMAN = {"coding": [{"system": ATC, "code": "A10AB01"}], "text": "Humulin R"}
PREDNISONE = {
    "coding": [{"system": RXNORM, "code": "8640", "display": "prednisone"}],
    "text": "Prednisone 40 mg",
}


def order_request(
    hook: str,
    pid: str,
    drafts: list[dict[str, Any]],
    selections: list[str] | None = None,
    prefetch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "userId": "Practitioner/example",
        "patientId": pid,
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        },
    }
    if selections is not None:
        context["selections"] = selections
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch if prefetch is not None else empty_prefetch(pid),
    }


def condition(pid: str, rid: str, code: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{pid}"},
    }


def test_discovery_lists_the_order_services(client):
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    assert services["insulin-order-select"]["hook"] == "order-select"
    assert services["insulin-order-sign"]["hook"] == "order-sign"
    assert "conditions" in services["insulin-order-sign"]["prefetch"]


def test_selected_animal_insulin_draft_gets_a_replace_suggestion(client):
    drafts = [draft("d-pork", "o1", PORK, dosageInstruction=DOSAGE), draft("d-human", "o1", HUMAN)]
    r = client.post(
        SELECT_URL, json=order_request("order-select", "o1", drafts, ["MedicationRequest/d-pork"])
    )
    assert r.status_code == 200
    body = r.get_json()
    assert topics(body) == ["animal-insulin-switch"]
    card = body["cards"][0]
    assert card["indicator"] == "warning"
    assert card["selectionBehavior"] == "at-most-one"
    actions = card["suggestions"][0]["actions"]
    # The create first (the Sandbox applies only the first action), then the delete of the draft.
    assert [a["type"] for a in actions] == ["create", "delete"]
    assert actions[1] == {
        "type": "delete",
        "resourceId": "MedicationRequest/d-pork",
        "description": actions[1]["description"],
    }
    created = actions[0]["resource"]
    assert (
        created["medicationCodeableConcept"]["coding"][0]["code"] == "253182"
    )  # human regular (same profile)
    # Timing kept, 12 units reduced by 10 % (porcine): 10.8 down to 10 would cut 17 %, more than 5 points
    # beyond the target, so it rounds up to 11 and the note says the 8 % applied (issue 22 A2).
    assert created["dosageInstruction"][0]["timing"] == DOSAGE[0]["timing"]
    assert created["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 11
    note = created["note"][0]["text"]
    assert "12 units per dose reduced by 8 % to 11 units (porcine source)" in note
    assert "hypoglycaemia" in note.lower() and "hypoglycaemia" in card["detail"].lower()


def test_only_selected_drafts_are_judged(client):
    drafts = [draft("d-pork", "o2", PORK), draft("d-human", "o2", HUMAN)]
    r = client.post(
        SELECT_URL, json=order_request("order-select", "o2", drafts, ["MedicationRequest/d-human"])
    )
    assert r.status_code == 200 and r.get_json() == {"cards": []}


def test_order_sign_judges_every_draft(client):
    drafts = [draft("d-human", "o3", HUMAN), draft("d-pork", "o3", PORK)]
    r = client.post(SIGN_URL, json=order_request("order-sign", "o3", drafts))
    assert topics(r.get_json()) == ["animal-insulin-switch"]


def test_draft_with_contained_medication(client):
    contained = {
        "resourceType": "Medication",
        "id": "m1",
        "code": {"coding": [{"system": ATC, "code": "A10AC02"}], "text": "Hypurin Bovine Isophane"},
    }
    d = draft("d-beef", "o4", None, contained=[contained], medicationReference={"reference": "#m1"})
    r = client.post(SELECT_URL, json=order_request("order-select", "o4", [d], ["MedicationRequest/d-beef"]))
    body = r.get_json()
    assert topics(body) == ["animal-insulin-switch"]
    created = body["cards"][0]["suggestions"][0]["actions"][0]["resource"]
    assert "isophane" in created["medicationCodeableConcept"]["text"].lower()  # intermediate → human NPH


def test_draft_referencing_a_medication_in_the_draft_bundle(client):
    med = {"resourceType": "Medication", "id": "m-pork", "code": PORK}
    d = draft("d-ref", "o5", None, medicationReference={"reference": "Medication/m-pork"})
    r = client.post(SIGN_URL, json=order_request("order-sign", "o5", [d, med]))
    assert topics(r.get_json()) == ["animal-insulin-switch"]


def test_unknown_resource_types_in_draft_orders_are_ignored(client):
    drafts = [
        {
            "resourceType": "ServiceRequest",
            "id": "sr1",
            "status": "draft",
            "intent": "order",
            "code": {"coding": [{"system": LOINC, "code": "2345-7"}]},
            "subject": {"reference": "Patient/o6"},
        },
        {
            "resourceType": "NutritionOrder",
            "id": "n1",
            "status": "draft",
            "intent": "order",
            "patient": {"reference": "Patient/o6"},
            "dateTime": "2026-11-27",
        },
        {"resourceType": "VisionPrescription", "id": "v1"},
        draft("d-pork", "o6", PORK),
    ]
    r = client.post(
        SELECT_URL,
        json=order_request(
            "order-select",
            "o6",
            drafts,
            ["ServiceRequest/sr1", "NutritionOrder/n1", "MedicationRequest/d-pork"],
        ),
    )
    assert r.status_code == 200
    assert topics(r.get_json()) == ["animal-insulin-switch"]


@pytest.mark.parametrize(
    ("url", "hook", "indicator"), [(SELECT_URL, "order-select", "info"), (SIGN_URL, "order-sign", "warning")]
)
def test_glucocorticoid_draft_with_diabetes(client, url, hook, indicator):
    prefetch = empty_prefetch("o7")
    prefetch["conditions"] = bundle(condition("o7", "c-t2", "44054006", "Type 2 diabetes mellitus"))
    d = draft(
        "d-pred",
        "o7",
        PREDNISONE,
        dosageInstruction=[
            {
                "text": "40 mg by mouth every morning",
                "route": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}]},
            }
        ],
    )
    selections = ["MedicationRequest/d-pred"] if hook == "order-select" else None
    r = client.post(url, json=order_request(hook, "o7", [d], selections, prefetch))
    body = r.get_json()
    assert topics(body) == ["glucocorticoid-hyperglycemia"]
    card = body["cards"][0]
    assert card["indicator"] == indicator
    # The diagnosis the order is judged on is the decisive value when there is no glucose to quote.
    assert card["summary"].startswith("Prednisone ordered with type 2 diabetes mellitus: plan glucose")
    assert "afternoon" in card["detail"]
    # Timed capillary glucose before lunch and the evening meal, not one untimed serum glucose.
    monitoring = card["suggestions"][0]["actions"][0]["resource"]
    assert monitoring["code"]["coding"][0]["code"] == "41653-7"
    assert monitoring["occurrenceTiming"] == {"repeat": {"when": ["ACD", "ACV"]}}


def test_glucocorticoid_draft_for_a_patient_already_on_one_shows_it_as_evidence(client):
    """The patient's current prednisone is what the new order adds to, possibly a duplicate: the card shows
    it with its dose in its evidence, not among "other causes of insulin resistance"."""
    prefetch = empty_prefetch("o10")
    prefetch["conditions"] = bundle(condition("o10", "c-t2", "44054006", "Type 2 diabetes mellitus"))
    prefetch["medicationRequests"] = bundle(
        draft(
            "mr-pred",
            "o10",
            {"coding": [{"system": RXNORM, "code": "312617", "display": "predniSONE 20 MG Oral Tablet"}]},
            status="active",
            dosageInstruction=[
                {
                    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
                }
            ],
        )
    )
    d = draft("d-pred", "o10", PREDNISONE)
    r = client.post(SIGN_URL, json=order_request("order-sign", "o10", [d], None, prefetch))
    (card,) = r.get_json()["cards"]
    assert card["source"]["topic"]["code"] == "glucocorticoid-hyperglycemia"
    evidence = card["detail"].split("**Evidence**", 1)[1]
    assert "Other causes of insulin resistance" not in card["detail"]
    assert "- predniSONE 20 MG Oral Tablet: 20 mg/day (prescription, active)" in evidence


def test_glucocorticoid_draft_with_hyperglycaemia_lab(client):
    prefetch = empty_prefetch("o8")
    from datetime import UTC, datetime, timedelta

    when = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    prefetch["observations"] = bundle(glucose("o8", "g1", 260, when))
    d = draft("d-pred", "o8", PREDNISONE)
    r = client.post(SIGN_URL, json=order_request("order-sign", "o8", [d], None, prefetch))
    assert topics(r.get_json()) == ["glucocorticoid-hyperglycemia"]


def test_glucocorticoid_draft_without_hyperglycaemia_or_inhaled_gets_no_card(client):
    inhaled = {"text": "Budesonide inhaler 200 micrograms", "coding": [{"system": ATC, "code": "R03BA02"}]}
    prefetch = empty_prefetch("o9")
    prefetch["conditions"] = bundle(condition("o9", "c-t2", "44054006", "Type 2 diabetes mellitus"))
    no_diabetes = client.post(
        SIGN_URL, json=order_request("order-sign", "o9", [draft("d1", "o9", PREDNISONE)])
    )
    assert no_diabetes.get_json() == {"cards": []}
    inhaled_only = client.post(
        SIGN_URL, json=order_request("order-sign", "o9", [draft("d2", "o9", inhaled)], None, prefetch)
    )
    assert inhaled_only.get_json() == {"cards": []}


def _sle_prefetch(pid: str, receptor_result: bool = False) -> dict[str, Any]:
    prefetch = empty_prefetch(pid)
    prefetch["conditions"] = bundle(condition(pid, "c-sle", "55464009", "Systemic lupus erythematosus"))
    if receptor_result:
        from datetime import UTC, datetime, timedelta

        prefetch["labResults"] = bundle(
            {
                "resourceType": "Observation",
                "id": "rab",
                "status": "final",
                "code": {"text": "Insulin receptor antibody"},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": (datetime.now(UTC) - timedelta(days=30)).isoformat(),
                "valueString": "Negative",
            }
        )
    return prefetch


HIGH_DOSE = [
    {
        "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 90, "unit": "U", "system": UCUM, "code": "[iU]"}}],
    }
]


@pytest.mark.parametrize(
    ("url", "hook", "indicator"), [(SELECT_URL, "order-select", "info"), (SIGN_URL, "order-sign", "warning")]
)
def test_extreme_insulin_dose_with_autoimmune_disease_suggests_type_b_workup(client, url, hook, indicator):
    d = draft("d-u500", "o10", HUMAN, dosageInstruction=HIGH_DOSE)  # 270 U/day
    selections = ["MedicationRequest/d-u500"] if hook == "order-select" else None
    prefetch = _sle_prefetch("o10")
    prefetch["observations"] = bundle(_weight("o10", 80))  # 3.4 U/kg/day: a supporting feature of type B
    body = client.post(url, json=order_request(hook, "o10", [d], selections, prefetch)).get_json()
    assert topics(body) == ["type-b-insulin-resistance"]
    card = body["cards"][0]
    assert card["indicator"] == indicator
    labels = [s["label"] for s in card["suggestions"]]
    assert "Refer to endocrinology" in labels
    codes = [
        c["code"]
        for s in card["suggestions"]
        for a in s["actions"]
        for c in a["resource"]["code"].get("coding", [])
    ]
    assert "INSR-AB" in codes


def test_extreme_insulin_dose_without_a_supporting_feature_gets_no_type_b_card(client):
    """Issue 14: an extreme dose alone (270 U/day at 100 kg = 2.7 U/kg/day, no fasting hypoglycaemia,
    acanthosis or BMI < 30) is not enough for type B."""
    d = draft("d-u500", "o12", HUMAN, dosageInstruction=HIGH_DOSE)
    prefetch = _sle_prefetch("o12")
    prefetch["observations"] = bundle(_weight("o12", 100))
    assert client.post(SIGN_URL, json=order_request("order-sign", "o12", [d], None, prefetch)).get_json() == {
        "cards": []
    }


def _weight(pid: str, kg: float) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    return {
        "resourceType": "Observation",
        "id": f"{pid}-weight",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": (datetime.now(UTC) - timedelta(days=10)).isoformat(),
        "valueQuantity": {"value": kg, "unit": "kg", "system": UCUM, "code": "kg"},
    }


def test_extreme_insulin_dose_with_recent_receptor_antibody_or_low_dose_gets_no_type_b_card(client):
    d = draft("d-u500", "o11", HUMAN, dosageInstruction=HIGH_DOSE)
    tested = client.post(
        SIGN_URL,
        json=order_request("order-sign", "o11", [d], None, _sle_prefetch("o11", receptor_result=True)),
    )
    assert tested.get_json() == {"cards": []}
    low = draft("d-low", "o11", HUMAN, dosageInstruction=DOSAGE)  # 36 U/day
    assert client.post(
        SIGN_URL, json=order_request("order-sign", "o11", [low], None, _sle_prefetch("o11"))
    ).get_json() == {"cards": []}


@pytest.mark.parametrize(
    ("url", "context_change", "mentions"),
    [
        (SIGN_URL, {"draftOrders": None}, "draftOrders"),
        (SIGN_URL, {"draftOrders": {"resourceType": "Patient"}}, "draftOrders"),
        (SELECT_URL, {"selections": None}, "selections"),
        (SELECT_URL, {"selections": "MedicationRequest/x"}, "selections"),
    ],
)
def test_order_context_validation(client, url, context_change, mentions):
    hook = "order-sign" if url == SIGN_URL else "order-select"
    body = order_request(hook, "o12", [draft("d", "o12", PORK)], ["MedicationRequest/d"])
    for key, value in context_change.items():
        if value is None:
            body["context"].pop(key, None)
        else:
            body["context"][key] = value
    r = client.post(url, json=body)
    assert r.status_code == 400
    assert mentions in r.get_json()["issue"][0]["diagnostics"]


def test_suggestion_actions_apply_cleanly_on_the_real_fhir_server(client, fhir_server):
    """O4: create the replacement and delete the draft against the FHIR server, then read back."""
    pid = "ord-apply"
    pork_draft = draft("ord-apply-d1", pid, PORK, dosageInstruction=DOSAGE)
    fhir_server.load_bundle(transaction({"resourceType": "Patient", "id": pid}, pork_draft))
    body = client.post(SIGN_URL, json=order_request("order-sign", pid, [pork_draft])).get_json()
    actions = body["cards"][0]["suggestions"][0]["actions"]
    applied = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    for action in actions:
        if action["type"] == "delete":
            applied["entry"].append({"request": {"method": "DELETE", "url": action["resourceId"]}})
        else:
            applied["entry"].append(
                {"resource": action["resource"], "request": {"method": "POST", "url": "MedicationRequest"}}
            )
    fhir_server.load_bundle(applied)
    remaining = fhir_server.get("MedicationRequest", {"patient": pid})
    resources = [
        e["resource"] for e in remaining.get("entry", []) if e.get("search", {}).get("mode") != "outcome"
    ]
    assert [r["id"] for r in resources] != ["ord-apply-d1"]
    assert len(resources) == 1
    replacement = resources[0]
    assert replacement["status"] == "draft" and replacement["intent"] == "proposal"
    assert replacement["medicationCodeableConcept"]["coding"][0]["code"] == "253182"
    assert replacement["dosageInstruction"][0]["text"] == "11 units per dose (was 12 units, reduced by 8 %)"
    assert fhir_server.request("GET", "MedicationRequest/ord-apply-d1").status_code in (404, 410)
