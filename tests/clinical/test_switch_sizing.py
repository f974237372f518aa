"""The switch sized to the patient (issue 22 A1, A2): the rounding rule per administration, every lab kind
of the knowledge read from a record, and a low eGFR anywhere in its window counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cds_hooks.clinical import findings
from cds_hooks.clinical.facts.build import build_facts
from cds_hooks.clinical.facts.labs import lab_classifier
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.clinical.switch_dose import applied_percent, new_dose
from cds_hooks.fhir.resource_index import ResourceIndex

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
LOINC = "http://loinc.org"


@pytest.mark.parametrize(
    ("units", "percent", "expected"),
    [
        # Issue 22 A2, computed by hand from the rule: below 10 U to the half unit below, else the whole
        # unit below; a rounding more than 5 points beyond the target rounds up instead.
        (3, 10, 2.5),  # 2.7 -> 2.5 (16.7 %); up would be 3 U, no cut: kept (within the 20 % ceiling)
        (5, 10, 4.5),
        (9, 10, 8.0),  # 8.1 -> 8 (11.1 %)
        (10, 10, 9.0),
        (11, 10, 10.0),  # 9.9 -> 9 is 18.2 %, more than 15: up to 10 (9.1 %)
        (3, 20, 2.5),  # 2.4 -> 2 is 33.3 %: up to 2.5 (16.7 %)
        (5, 20, 4.0),
        (9, 20, 7.0),  # 7.2 -> 7 (22.2 %, within 25)
        (10, 20, 8.0),
        (11, 20, 9.0),  # 8.8 -> 8 is 27.3 %: up to 9 (18.2 %)
        (1, 10, 1.0),  # 0.5 U would be a 50 % cut: the dose stays (no half-unit step fits)
        (0.5, 20, 0.5),  # never 0 units
    ],
)
def test_new_dose_rounding_rule(units: float, percent: float, expected: float) -> None:
    """Issue 22 A2: the rounding rule and its two safety edges (no '0 % lower' at 3 U, never 0 units)."""
    dose = new_dose(default_knowledge(), units, percent)
    assert dose == expected
    assert dose > 0


def test_applied_percent_is_what_the_rounding_made() -> None:
    """Issue 22 A2: the percentage printed is the one applied after rounding."""
    assert applied_percent(11, new_dose(default_knowledge(), 11, 10)) == 9.1
    assert applied_percent(3, new_dose(default_knowledge(), 3, 10)) == 16.7


def test_every_lab_kind_of_the_knowledge_is_read() -> None:
    """Issue 22 A1/A3: a lab kind in labs.toml is never silently dropped (eGFR, pregnancy status and CGM
    glucose were: they were not named in the classifier's precedence)."""
    knowledge = default_knowledge()
    classifier = lab_classifier(knowledge)
    for name, lab in knowledge.labs.items():
        for system, codes in lab.valueset.exact_codes().items():
            for code in codes:
                assert classifier.kind_of({"coding": [{"system": system, "code": code}]}), (name, code)
    for code in ("62238-1", "98979-8", "33914-3", "48642-3", "48643-1"):
        assert classifier.kind_of({"coding": [{"system": LOINC, "code": code}]}) == "egfr"
    assert classifier.kind_of({"coding": [{"system": LOINC, "code": "82810-3"}]}) == "pregnancy_status"


def _egfr(value: float, days: int) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "id": f"egfr-{days}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "62238-1"}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": (NOW - timedelta(days=days)).isoformat(),
        "valueQuantity": {"value": value, "unit": "mL/min/1.73m2"},
    }


@pytest.mark.parametrize(
    ("results", "low"),
    [
        ([(29, 20)], True),
        ([(30, 20)], False),
        ([(29, 366)], False),
        ([(28, 200), (55, 10)], True),  # any eGFR < 30 within 365 days, not only the newest
    ],
)
def test_renal_impairment_any_low_egfr_in_window(results: list[tuple[float, int]], low: bool) -> None:
    """Issue 22 A1: eGFR < 30 within 365 days is a risk factor (the safer reading: any, not the newest)."""
    knowledge = default_knowledge()
    index = ResourceIndex([{"resourceType": "Patient", "id": "p"}, *(_egfr(v, d) for v, d in results)])
    facts = build_facts(index, knowledge, "p", NOW)
    assert bool(findings.renal_impairment(facts, knowledge)) is low
