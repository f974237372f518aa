"""The timeline's data: the clinical core's readers over the chosen range, medication courses and the
total daily dose, and the page as rendered (text from the record is never markup)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask, render_template

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.clinical.rules import rule_input
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.web.timeline.page import build_page
from cds_hooks.web.timeline.series import build_timeline

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LOINC = "http://loinc.org"


def glucose(rid: str, days_ago: int, value: float, unit: str, status: str = "final") -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": "2345-7"}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": (NOW - timedelta(days=days_ago)).isoformat(),
        "valueQuantity": {"value": value, "unit": unit},
    }


def insulin_statement(rid: str, name: str, start: str, end: str | None, units: float) -> dict:
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "resourceType": "MedicationStatement",
        "id": rid,
        "status": "completed" if end else "active",
        "medicationCodeableConcept": {"text": name},
        "subject": {"reference": "Patient/p"},
        "effectivePeriod": period,
        "dosage": [
            {
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": units, "unit": "U"}}],
            }
        ],
    }


def record() -> ResourceIndex:
    return ResourceIndex(
        [
            {"resourceType": "Patient", "id": "p", "name": [{"text": "<b>Test</b> Patient"}]},
            glucose("g1", 10, 13.1, "mmol/L"),
            glucose("g2", 400, 250, "mg/dL"),
            glucose("g3", 900, 300, "mg/dL"),  # older than two years: outside the default range
            glucose("g4", 5, 500, "mg/dL", status="entered-in-error"),
            insulin_statement(
                "m1", "Pork Insulatard <script>alert(1)</script>", "2024-01-01", "2025-09-01", 40
            ),
            insulin_statement("m2", "Humulin N", "2025-09-01", None, 30),
        ]
    )


def test_the_range_and_the_readers_of_the_clinical_core():
    index, knowledge = record(), default_knowledge()
    facts = rule_input(index, knowledge, "p", NOW).facts
    timeline = build_timeline(index, knowledge, facts, NOW - timedelta(days=730), NOW)
    values = [(r.evidence.reference, round(r.value or 0, 1)) for r in timeline.labs["glucose"]]
    assert values == [("Observation/g2", 250.0), ("Observation/g1", 236.0)]  # mmol/L × 18.016, oldest first
    groups = {e.reference: e.group for e in timeline.exposures}
    assert groups == {
        "MedicationStatement/m1": "animal insulin",
        "MedicationStatement/m2": "human insulin / analogue",
    }
    steps = timeline.total_daily_dose()
    assert [u for _, u in steps] == [40.0, 30.0, 30.0]
    assert steps[1][0] == datetime(2025, 9, 1, tzinfo=UTC)


def test_glucocorticoid_courses_carry_the_prednisolone_equivalent_and_trigger_drugs_their_own_group():
    atc = "http://www.whocc.no/atc"
    hydrocortisone = {
        "resourceType": "MedicationStatement",
        "id": "s1",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": atc, "code": "H02AB09"}],
            "text": "Hydrocortisone",
        },
        "subject": {"reference": "Patient/p"},
        "effectivePeriod": {"start": "2026-01-01"},
        "dosage": [
            {
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]},
                "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 10, "unit": "mg", "code": "mg"}}],
            }
        ],
    }
    lipoic = {
        "resourceType": "MedicationStatement",
        "id": "t1",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": atc, "code": "A16AX01"}],
            "text": "Alpha-lipoic acid",
        },
        "subject": {"reference": "Patient/p"},
        "effectivePeriod": {"start": "2026-02-01"},
    }
    index, knowledge = (
        ResourceIndex([{"resourceType": "Patient", "id": "p"}, hydrocortisone, lipoic]),
        default_knowledge(),
    )
    facts = rule_input(index, knowledge, "p", NOW).facts
    timeline = build_timeline(index, knowledge, facts, NOW - timedelta(days=730), NOW)
    courses = {e.reference: (e.group, e.prednisolone_mg) for e in timeline.exposures}
    assert courses == {
        "MedicationStatement/s1": ("systemic glucocorticoid", 5.0),  # hydrocortisone 20 mg/day (BNF 20:5)
        "MedicationStatement/t1": ("trigger drug of insulin autoimmune syndrome", None),
    }
    assert timeline.total_daily_dose() == []  # no insulin course


def test_the_page_escapes_the_record_and_converts_units():
    app = Flask("t", template_folder="cds_hooks/web/templates")
    from cds_hooks.web.smart_app import bp

    app.register_blueprint(bp)
    page = build_page(
        record(),
        default_knowledge(),
        patient_id="p",
        now=NOW,
        start=NOW - timedelta(days=730),
        end=NOW,
        glucose_unit="mmol/L",
        rule="insulin-antibody-workup",
    )
    with app.test_request_context("/app/"):
        html = render_template(
            "app/timeline.html",
            page=page,
            unit_links={"mg/dL": "/a", "mmol/L": "/b"},
            card=None,
            from_value="",
            to_value="",
            open_mode=False,
        )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Test</b>" not in html and "&lt;b&gt;Test&lt;/b&gt; Patient" in html
    assert ">13.1 mmol/L<" in html and ">13.88 mmol/L<" in html  # 250 mg/dL / 18.016
    assert 'id="why-insulin-antibody-workup"' in html
    assert "labile low &lt; 70 mg/dL (= 3.89 mmol/L)" in html  # thresholds in the page's unit too
