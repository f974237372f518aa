"""Draft orders as the CDS Hooks Sandbox sends them, over plain HTTP (no browser needed).

The Sandbox's draft ``MedicationRequest`` carries ``category`` as one object instead of a list (not
valid R4). The rules read medication, dosage, status, intent and subject, so the draft is judged on those
and the invalid ``category`` is set aside with a WARNING that names it — never the patient's data.
A draft that cannot be judged at all is logged the same way instead of being dropped silently.
"""

from __future__ import annotations

import copy
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cds_hooks.clinical.evaluation import evaluate_index
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.resource_index import DEFERRED, ResourceIndex, validate
from tests.builders import bundle, empty_prefetch, glucose, porcine_statement, topics

PID = "sbx-ex20"
GLUCOCORTICOID = "glucocorticoid-hyperglycemia"

# Exactly what the Sandbox (cds-hooks/sandbox 3b7e255) sends after "Prednisone 20 MG Oral Tablet" is
# picked on Rx View / Rx Sign: category is one object, the dose is 1 {pill} daily.
SANDBOX_DRAFT: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "id": "request-123",
    "status": "draft",
    "subject": {"reference": f"Patient/{PID}"},
    "authoredOn": "2026-12-01",
    "dosageInstruction": [
        {
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [
                {"doseQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "{pill}"}}
            ],
        }
    ],
    "dispenseRequest": {
        "expectedSupplyDuration": {
            "value": 30,
            "unit": "days",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    },
    "intent": "order",
    "category": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                "code": "community",
            }
        ]
    },
    "medicationCodeableConcept": {
        "text": "Prednisone 20 MG Oral Tablet",
        "coding": [
            {
                "display": "Prednisone 20 MG Oral Tablet",
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "312615",
            }
        ],
    },
}
# What the Sandbox sends when Rx View opens, before a medication is picked: nothing to judge.
SANDBOX_EMPTY_DRAFT: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "id": "request-123",
    "status": "draft",
    "subject": {"reference": f"Patient/{PID}"},
    "authoredOn": "2026-12-01",
}
URLS = {
    "order-select": "/cds-services/insulin-order-select",
    "order-sign": "/cds-services/insulin-order-sign",
}


def hyperglycaemic_prefetch() -> dict[str, Any]:
    prefetch = empty_prefetch(PID)
    when = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    prefetch["observations"] = bundle(glucose(PID, "g-268", 268, when))
    return prefetch


def sandbox_request(hook: str, draft: dict[str, Any]) -> dict[str, Any]:
    """The Sandbox's request shape: selections on order-select, a draftOrders Bundle without type."""
    context: dict[str, Any] = {
        "patientId": PID,
        "userId": "Practitioner/COREPRACTITIONER1",
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": copy.deepcopy(draft)}]},
    }
    if hook == "order-select":
        context["selections"] = ["MedicationRequest/request-123"]
    return {
        "hookInstance": str(uuid.uuid4()),
        "hook": hook,
        "context": context,
        "prefetch": hyperglycaemic_prefetch(),
    }


def warnings_from(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The WARNINGs logged so far, once the background whole-resource checks have run (they log the
    elements set aside off the request path)."""
    assert DEFERRED.drain(timeout=10)
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_the_sandbox_draft_is_not_valid_r4_as_a_whole():
    """The premise: R4 wants a list; the draft is usable only because category is not read."""
    result = validate(SANDBOX_DRAFT)
    assert result.problem is None
    assert [name for name, _ in result.set_aside] == ["category"]


@pytest.mark.parametrize(("hook", "indicator"), [("order-select", "info"), ("order-sign", "warning")])
def test_sandbox_draft_with_category_object_gets_the_glucocorticoid_card(client, caplog, hook, indicator):
    caplog.set_level(logging.WARNING)
    r = client.post(URLS[hook], json=sandbox_request(hook, SANDBOX_DRAFT))
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert topics(body) == [GLUCOCORTICOID]
    assert body["cards"][0]["indicator"] == indicator
    assert "Prednisone 20 MG Oral Tablet" in body["cards"][0]["detail"]
    # 1 {pill} once daily × the 20 mg strength printed in the product's name
    assert body["cards"][0]["summary"].startswith("Prednisone 20 mg/day ordered with glucose 268 mg/dL")
    set_aside = [m for m in warnings_from(caplog) if "set aside" in m]
    assert len(set_aside) == 1 and "category" in set_aside[0] and "MedicationRequest" in set_aside[0]
    assert all(PID not in m and "Prednisone" not in m for m in warnings_from(caplog))


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_draft_that_cannot_be_judged_is_logged_not_dropped_silently(client, caplog, hook):
    caplog.set_level(logging.WARNING)
    r = client.post(URLS[hook], json=sandbox_request(hook, SANDBOX_EMPTY_DRAFT))
    assert r.status_code == 200 and r.get_json() == {"cards": []}
    not_judged = [m for m in warnings_from(caplog) if "not judged" in m]
    assert len(not_judged) == 1
    assert hook in not_judged[0] and "intent" in not_judged[0]  # the reason: intent is required
    assert PID not in not_judged[0]


def test_a_draft_whose_dosage_is_invalid_is_not_judged_and_says_why(client, caplog):
    caplog.set_level(logging.WARNING)
    draft = copy.deepcopy(SANDBOX_DRAFT)
    draft["dosageInstruction"] = "one tablet daily"  # an element the rules read: not set aside
    r = client.post(URLS["order-sign"], json=sandbox_request("order-sign", draft))
    assert r.get_json() == {"cards": []}
    not_judged = [m for m in warnings_from(caplog) if "not judged" in m]
    assert len(not_judged) == 1 and "dosageInstruction" in not_judged[0]


def test_a_draft_without_a_medication_the_rules_can_read_is_logged(client, caplog):
    caplog.set_level(logging.WARNING)
    draft = copy.deepcopy(SANDBOX_DRAFT)
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "Medication/not-sent"}
    r = client.post(URLS["order-sign"], json=sandbox_request("order-sign", draft))
    assert r.get_json() == {"cards": []}
    assert any("not judged: no medication" in m for m in warnings_from(caplog))


# ------------------------------------------------------------------- the same principle for patient-view


def test_patient_view_resource_with_an_invalid_unread_element_is_used_and_logged(caplog):
    caplog.set_level(logging.WARNING)
    statement = porcine_statement("p", "ms-note")
    statement["note"] = "patient says fine"  # Annotation[] in R4; the rules never read notes
    index = ResourceIndex([statement])
    now = datetime.now(UTC)
    cards = evaluate_index(index, patient_id="p", knowledge=default_knowledge(), now=now)["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["animal-insulin-switch"]
    assert index.rejection(statement) is None
    assert "could not be used" not in cards[0]["detail"]
    logged = [m for m in warnings_from(caplog) if "set aside" in m]
    assert logged == [
        "MedicationStatement: set aside note (not valid FHIR R4: list_type); "
        "the rules read only their own elements"
    ]


def test_an_invalid_element_the_rules_read_still_makes_the_resource_unusable():
    statement = porcine_statement("p", "ms-bad")
    statement["note"] = "x"
    statement["dosage"] = "twice daily"
    result = validate(statement)
    assert result.problem is not None and "not valid FHIR R4" in result.problem


def test_a_required_element_missing_behind_a_set_aside_one_is_still_found():
    """Whole-resource checks run once the elements are valid: setting category aside must not hide
    that intent is missing."""
    draft = copy.deepcopy(SANDBOX_DRAFT)
    del draft["intent"]
    result = validate(draft)
    assert result.problem is not None and "intent" in result.problem


def test_unknown_elements_are_set_aside_and_unlisted_types_must_be_valid_whole():
    draft = copy.deepcopy(SANDBOX_DRAFT)
    draft["Jane Doe\nFAKE LOG LINE"] = True  # a key from the record is never echoed
    result = validate(draft)
    assert result.problem is None
    assert {name for name, _ in result.set_aside} == {"category", "an element unknown to R4"}
    encounter = {"resourceType": "Encounter", "id": "e", "status": "finished", "class": "AMB"}
    assert validate(encounter).problem is not None


# ------------------------------------------------- what the Sandbox does when a suggestion is accepted


def sandbox_accept(order_form: dict[str, Any] | None, suggestion: dict[str, Any]) -> dict[str, Any] | None:
    """The Sandbox's Rx View order form after "accept" (its TAKE_SUGGESTION reducer, cds-hooks/sandbox
    3b7e255, in Python): actions are read in order and the **first** that applies decides — a create or
    update of a resource with a ``medicationCodeableConcept`` (text and a first coding code) replaces the
    medication; a ``delete`` empties the form; anything else (e.g. a ServiceRequest) is skipped."""
    for action in suggestion.get("actions", []):
        if action.get("type") in ("create", "update"):
            concept = (action.get("resource") or {}).get("medicationCodeableConcept") or {}
            codings = concept.get("coding") or []
            if concept.get("text") and codings and codings[0].get("code"):
                return {"name": concept["text"], "id": codings[0]["code"]}
        elif action.get("type") == "delete":
            return None
    return order_form


ANIMAL_INSULIN_DRAFT: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "id": "request-123",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": f"Patient/{PID}"},
    "category": SANDBOX_DRAFT["category"],  # as the Sandbox sends it
    "medicationCodeableConcept": {
        "text": "Hypurin Porcine Neutral",
        "coding": [{"system": "http://www.whocc.no/atc", "code": "A10AB03", "display": "insulin (pork)"}],
    },
    "dosageInstruction": [
        {
            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [
                {"doseQuantity": {"value": 12, "system": "http://unitsofmeasure.org", "code": "[iU]"}}
            ],
        }
    ],
}


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_accepting_the_animal_insulin_replacement_in_the_sandbox_keeps_a_medication_order(client, hook):
    """Issue 10 item 2: the create comes first, so the Sandbox (which applies only the first action)
    puts the proposed human insulin in its order form instead of emptying it. The Sandbox's picker has no
    insulin, so this is checked on the service's answer with the Sandbox's own accept logic."""
    r = client.post(URLS[hook], json=sandbox_request(hook, ANIMAL_INSULIN_DRAFT))
    cards = [c for c in r.get_json()["cards"] if c["source"]["topic"]["code"] == "animal-insulin-switch"]
    assert len(cards) == 1
    drafted = {"name": "Hypurin Porcine Neutral", "id": "A10AB03"}
    replacements = [
        s for s in cards[0].get("suggestions", []) if any(a.get("type") == "delete" for a in s["actions"])
    ]
    assert replacements, "no suggestion replaces the animal-insulin draft"
    for suggestion in replacements:
        after = sandbox_accept(drafted, suggestion)
        assert after is not None, f"accepting {suggestion['label']!r} empties the Sandbox's order form"
        assert after != drafted and "insulin" in after["name"].lower()


def test_the_sandbox_accept_model_on_a_monitoring_create_and_a_delete_first():
    """The model on the two shapes that matter: a ServiceRequest create leaves the order (the real Sandbox
    does the same in tests/sandbox/test_sandbox.py); a delete first empties it."""
    prednisone = {"name": "Prednisone 20 MG Oral Tablet", "id": "312615"}
    monitoring = {"actions": [{"type": "create", "resource": {"resourceType": "ServiceRequest"}}]}
    assert sandbox_accept(prednisone, monitoring) == prednisone
    delete_first = {"actions": [{"type": "delete", "resourceId": "MedicationRequest/request-123"}]}
    assert sandbox_accept(prednisone, delete_first) is None
