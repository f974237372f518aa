"""Facts from real-shaped records (issues 14 and 16): stale orders, ended statements, end dates of past
use, glucocorticoid doses as prednisolone equivalents, duplicates merged, pending tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from cds_hooks.clinical.facts.build import build_facts
from cds_hooks.clinical.facts.medications import request_currency, statement_currency
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.resource_index import ResourceIndex

TODAY = date(2026, 6, 1)
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
SNOMED = "http://snomed.info/sct"


def request(status: str = "active", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "status": status, **fields}


@pytest.mark.parametrize(
    ("fields", "current", "stale_year", "ended"),
    [
        ({"authoredOn": "2025-04-27"}, True, None, None),  # 400 days ago: current
        ({"authoredOn": "2025-04-26"}, False, 2025, date(2025, 4, 26)),  # 401 days: stale
        ({"authoredOn": "2002-03-14T10:00:00Z"}, False, 2002, date(2002, 3, 14)),
        ({}, True, None, None),  # no date at all: nothing shows it is stale
        (
            {"authoredOn": "2019-01-01", "dispenseRequest": {"validityPeriod": {"end": "2026-06-01"}}},
            True,
            None,
            None,
        ),  # validity covers today (its last day)
        (
            {"authoredOn": "2026-05-01", "dispenseRequest": {"validityPeriod": {"end": "2026-05-31"}}},
            False,
            2026,
            date(2026, 5, 31),
        ),  # validity ended yesterday: the validity decides, not the recent authoredOn
    ],
)
def test_active_request_is_current_only_while_valid_or_recently_authored(fields, current, stale_year, ended):
    currency = request_currency(request(**fields), TODAY, 400)
    assert currency is not None
    assert (currency.current, currency.past, currency.stale_year, currency.ended) == (
        current,
        not current,
        stale_year,
        ended,
    )


def test_request_not_yet_valid_or_never_taken_does_not_count():
    future = {"dispenseRequest": {"validityPeriod": {"start": "2026-07-01"}}}
    assert request_currency(request(**future), TODAY, 400) is None
    for status in ("entered-in-error", "cancelled", "draft", "unknown"):
        assert request_currency(request(status, authoredOn="2026-05-01"), TODAY, 400) is None


@pytest.mark.parametrize(
    ("resource", "current", "ended"),
    [
        (
            {"status": "active", "effectivePeriod": {"start": "2026-01-01", "end": "2026-05-31"}},
            False,
            date(2026, 5, 31),
        ),
        ({"status": "active", "effectivePeriod": {"start": "2026-01-01", "end": "2026-06-01"}}, True, None),
        ({"status": "completed", "effectivePeriod": {"end": "2004"}}, False, date(2004, 12, 31)),
        ({"status": "completed", "effectivePeriod": {"end": "2004-02"}}, False, date(2004, 2, 29)),
        ({"status": "stopped", "effectiveDateTime": "2025-02-01T09:00:00Z"}, False, date(2025, 2, 1)),
        ({"status": "completed"}, False, None),  # undated past exposure
    ],
)
def test_statement_currency_and_end_of_past_use(resource, current, ended):
    currency = statement_currency({"resourceType": "MedicationStatement", **resource}, TODAY)
    assert currency is not None and (currency.current, currency.ended) == (current, ended)


def facts(*resources: dict[str, Any]):
    return build_facts(ResourceIndex(resources), default_knowledge(), "p", NOW)


def tablets(n: float, timing: str = "QD") -> dict[str, Any]:
    return {
        "timing": {"code": {"coding": [{"system": GTS, "code": timing}]}},
        "doseAndRate": [{"doseQuantity": {"value": n, "unit": "tablet", "system": UCUM, "code": "{tbl}"}}],
    }


def test_glucocorticoid_dose_and_prednisolone_equivalent():
    dexamethasone = request(
        id="dex",
        authoredOn="2026-05-01",
        medicationCodeableConcept={
            "text": "Dexamethasone 4 mg tablets",
            "coding": [{"system": ATC, "code": "H02AB02"}],
        },
        dosageInstruction=[tablets(1, "BID")],
    )
    (use,) = facts(dexamethasone).medications
    assert (use.glucocorticoid, use.daily_mg) == ("dexamethasone", 8.0)
    assert use.prednisolone_mg == pytest.approx(8 * 5 / 0.75)
    assert "8 mg/day = prednisolone 53.3 mg/day" in use.evidence.text


def test_strength_from_medication_ingredient_wins_over_ambiguous_text():
    medication = {
        "resourceType": "Medication",
        "id": "m1",
        "code": {"text": "Hydrocortisone 10 mg or 20 mg tablets"},  # two strengths: ambiguous text
        "ingredient": [
            {
                "itemCodeableConcept": {"text": "hydrocortisone"},
                "strength": {
                    "numerator": {"value": 10, "unit": "mg", "system": UCUM, "code": "mg"},
                    "denominator": {"value": 1, "unit": "tablet", "system": UCUM, "code": "{tbl}"},
                },
            }
        ],
    }
    order = request(
        id="hc",
        authoredOn="2026-05-01",
        medicationReference={"reference": "Medication/m1"},
        dosageInstruction=[tablets(1.5, "BID")],
    )
    (use,) = facts(medication, order).medications
    assert (use.daily_mg, use.prednisolone_mg) == (30.0, 7.5)
    without_strength = dict(medication, ingredient=[])
    (use,) = facts(without_strength, order).medications
    assert use.daily_mg is None and "daily dose unknown" in use.evidence.text


def test_duplicate_conditions_results_and_medications_are_merged():
    def condition(rid: str, onset: str) -> dict[str, Any]:
        return {
            "resourceType": "Condition",
            "id": rid,
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {
                "coding": [{"system": "http://snomed.info/sct", "code": "414916001"}],
                "text": "Obesity",
            },
            "onsetDateTime": onset,
        }

    def glucose(rid: str, value: float) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "effectiveDateTime": "2026-05-20T08:00:00Z",
            "valueQuantity": {"value": value, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
        }

    pork = {"text": "Hypurin Porcine Neutral", "coding": [{"system": ATC, "code": "A10AB03"}]}
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms",
        "status": "active",
        "medicationCodeableConcept": pork,
    }
    order = request(id="mr", authoredOn="2026-05-01", medicationCodeableConcept=pork)
    f = facts(
        condition("c1", "2020-01-01"),
        condition("c2", "2014-03-01"),
        condition("c3", "2018-01-01"),
        glucose("g1", 140),
        glucose("g2", 140),
        glucose("g3", 141),
        statement,
        order,
    )
    (obesity,) = f.conditions
    assert (obesity.count, obesity.onset, obesity.evidence.reference) == (3, "2014-03-01", "Condition/c2")
    assert "since 2014-03-01, recorded 3 times" in obesity.evidence.text
    assert sorted(r.value for r in f.lab("glucose")) == [140, 141]
    (insulin,) = f.medications  # the MedicationRequest stands for both; the statement is a duplicate
    assert insulin.evidence.reference == "MedicationRequest/mr" and insulin.duplicates == (
        "MedicationStatement/ms",
    )


def test_pending_tests_by_service_request_and_observation_status():
    def service_request(rid: str, status: str, authored: str, code: str) -> dict[str, Any]:
        return {
            "resourceType": "ServiceRequest",
            "id": rid,
            "status": status,
            "intent": "order",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "authoredOn": authored,
        }

    f = facts(
        service_request("s1", "active", "2026-05-20", "111329-9"),  # insulin antibody order term
        service_request("s2", "completed", "2026-05-20", "1986-9"),
        service_request("s3", "on-hold", "2025-01-01", "20448-7"),  # insulin: outside its 90-day window
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "registered",
            "code": {"text": "Insulin receptor antibody"},
        },
    )
    assert sorted(f.pending) == ["insulin_antibody", "insulin_receptor_antibody"]
    (antibody,) = f.pending["insulin_antibody"]
    assert antibody.evidence.text == "Pending: Insulin antibodies, ordered 2026-05-20 (ServiceRequest active)"
    assert f.pending["insulin_receptor_antibody"][0].ordered is None


@pytest.mark.parametrize(
    ("code", "value", "kind"),
    [
        ("82810-3", {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "77386006"}]}},
         "pregnancy_status"),
        ("98979-8", {"valueQuantity": {"value": 9, "unit": "mL/min/1.73m2", "system": UCUM,
                                       "code": "mL/min/{1.73_m2}"}}, "egfr"),
    ],
)  # fmt: skip
def test_every_lab_kind_of_the_knowledge_is_read(code: str, value: dict[str, Any], kind: str):
    """Issue 22 A1, A3: a pregnancy status or an eGFR is read as its lab kind (the classifier once knew
    only the kinds named in its precedence list, so a positive pregnancy status never counted)."""
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-05-01T08:00:00Z",
        **value,
    }
    index = ResourceIndex()
    index.add({"resourceType": "Patient", "id": "p1", "birthDate": "1990-01-01"})
    index.add(obs)
    facts = build_facts(index, default_knowledge(), "p1", NOW)
    assert [r.evidence.reference for r in facts.lab(kind)] == ["Observation/o1"]
    assert {k for k, results in facts.labs.items() if results} == {kind}


def test_lab_classifier_covers_every_kind_of_labs_toml():
    """Issue 22 A1, A3, A4: each lab kind of knowledge/labs.toml is classified from its own codes (none
    silently left out), unless a kind earlier in the precedence list claims the same code."""
    from cds_hooks.clinical.facts.labs import lab_classifier

    knowledge = default_knowledge()
    classifier = lab_classifier(knowledge)
    unread = [
        (kind, system, code)
        for kind, lab in knowledge.labs.items()
        for system, codes in lab.valueset.exact_codes().items()
        for code in codes
        if classifier.kind_of({"coding": [{"system": system, "code": code}]}) is None
    ]
    assert unread == []
