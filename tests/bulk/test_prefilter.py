"""The bounds the bulk screen applies before grouping, without Spark: the raw scan never sets aside a line
the parsed bounds would keep, what the bounds keep gives every example the cards of its whole record, a
pump or CGM Device is kept, and a patient with nothing but its Patient left has no card to give."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.bulk.ndjson import EXPORT_TYPES
from cds_hooks.bulk.patient import SCREENED, evaluate_patient
from cds_hooks.bulk.prefilter import Bounds
from cds_hooks.clinical.evaluation import evaluate_index
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.resource_index import ResourceIndex
from tests.bulk.conftest import NOW, example_resources
from tests.bulk.test_ndjson import GLUCOSE

SYNTHEA = Path(__file__).parents[1] / "data" / "synthea-adults.json.gz"
SYNTHEA_NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
OLD = {**GLUCOSE, "effectiveDateTime": "2019-03-01T08:00:00Z", "issued": "2019-03-01T09:00:00Z"}

UNDATED = {k: v for k, v in OLD.items() if k not in ("effectiveDateTime", "issued")}


def _raw(resource: dict[str, Any], **dumps: Any) -> bytes:
    return (json.dumps(resource, **dumps) + "\n").encode()


@pytest.fixture(scope="module")
def bounds() -> Bounds:
    return Bounds.for_screen(default_knowledge(), SYNTHEA_NOW)


def _synthea_resources() -> list[dict[str, Any]]:
    with gzip.open(SYNTHEA, "rt", encoding="utf-8") as fh:
        records = json.load(fh)
    return [e["resource"] for r in records for e in r["entry"]]


RAW_TYPES = ("Observation", "Condition", "MedicationRequest", "MedicationStatement")


def test_the_raw_scan_never_sets_aside_what_the_parsed_bounds_keep(bounds):
    """Over the Synthea adults and every example (whose records fire every rule), in two layouts."""
    resources = _synthea_resources() + example_resources()
    set_aside: dict[str, int] = dict.fromkeys(RAW_TYPES, 0)
    for resource in resources:
        rtype = resource["resourceType"]
        for line in (_raw(resource), _raw(resource, separators=(",", ":"))):
            if bounds.raw_outside(line) is not None:
                assert bounds.raw_outside(line) == rtype
                assert not bounds.keep(rtype, resource), (rtype, resource["id"])
                set_aside[rtype] += 1
    # and it is worth having: most of a Synthea record is history, or concepts no rule reads
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    outside = sum(1 for r in observations if not bounds.in_window(r))
    assert set_aside["Observation"] > 2 * outside > len(observations)
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    assert set_aside["Condition"] > len(conditions)  # of the two layouts of each, more than half
    assert set_aside["MedicationRequest"] > 0


@pytest.mark.parametrize(
    "resource",
    [
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "Patient/p"},
            "code": {"text": "Insulin resistance, type B \\u2014 anti-receptor antibodies"},
        },  # a backslash
        {
            "resourceType": "Condition",
            "id": "c2",
            "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "55464009"}]},
        },  # SLE, by code
        {
            "resourceType": "Condition",
            "id": "c3",
            "subject": {"reference": "Patient/p"},
            "code": {"text": "systemic lupus erythematosus"},
        },  # by name only
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "subject": {"reference": "Patient/p"},
            "medicationReference": {"reference": "Medication/x"},
        },  # the Medication decides
        {
            "resourceType": "MedicationStatement",
            "id": "m2",
            "subject": {"reference": "Patient/p"},
            "medicationCodeableConcept": {"text": "Hypurin Porcine Neutral"},
        },
        {**OLD, "effectiveDateTime": "2026-11-30", "code": {"text": "Insulin antibody"}},
    ],
)
def test_the_raw_scan_leaves_what_a_rule_could_read_to_the_parser(bounds, resource):
    assert bounds.raw_outside(_raw(resource)) is None


def test_the_raw_scan_sets_aside_concepts_no_rule_reads(bounds):
    sprain = {"resourceType": "Condition", "id": "c9", "subject": {"reference": "Patient/p"},
              "clinicalStatus": {"coding": [{"code": "active"}]},
              "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44465007",
                                   "display": "Sprain of ankle"}]}}  # fmt: skip
    heart_rate = {**OLD, "effectiveDateTime": "2026-11-30",
                  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                                       "display": "Heart rate"}]},
                  "valueQuantity": {"value": 70, "unit": "/min", "code": "/min"}}  # fmt: skip
    lisinopril = {"resourceType": "MedicationRequest", "id": "m9", "subject": {"reference": "Patient/p"},
                  "status": "active", "medicationCodeableConcept": {"coding": [
                      {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076",
                       "display": "lisinopril 10 MG Oral Tablet"}]}}  # fmt: skip
    for resource in (sprain, heart_rate, lisinopril):
        assert bounds.raw_outside(_raw(resource)) == resource["resourceType"]
        assert not bounds.keep(resource["resourceType"], resource)


@pytest.mark.parametrize(
    "line",
    [
        _raw({**OLD, "effectiveDateTime": "2026-11-30"}),  # in window
        _raw({**OLD, "effectiveDateTime": "2026"}),  # partial: may be in window
        _raw(UNDATED),
        # an undated Observation whose only dates are nested (a component's period)
        _raw({**UNDATED, "component": [{"valuePeriod": {"start": "2019-01-01", "end": "2019-02-01"}}]}),
        _raw({**OLD, "effectivePeriod": {"start": "2019-01-01", "end": "2026-11-30"}}),  # ends in window
        _raw({**OLD, "contained": [{"resourceType": "Observation", "issued": "2019-01-01"}]}),
        _raw({"id": "o1", **OLD}),  # resourceType not first: parsed
        _raw(OLD)[:-20] + b"\n",  # truncated: parsed, so reported as not JSON
        _raw({**OLD, "issued": {"odd": "2019"}}),  # a date member that is not a string
        _raw({**OLD, "resourceType": "ObservationDefinition"}),
        _raw({**OLD, "effectiveDateTime": "２０１９-01-01"}, ensure_ascii=False),  # non-ASCII digits
    ],
)
def test_the_raw_scan_leaves_every_doubtful_line_to_the_parser(bounds, line):
    assert bounds.raw_outside(line) is None


def test_the_raw_scan_sets_aside_an_old_observation_whatever_its_layout(bounds):
    assert bounds.raw_outside(_raw(OLD)) == "Observation"
    assert bounds.raw_outside(_raw(OLD, indent=None, separators=(" , ", " : "))) == "Observation"
    # a key inside a string value is escaped and does not count as a date
    note = {**OLD, "note": [{"text": '{"issued": "2026-11-30"}'}]}
    assert bounds.raw_outside(_raw(note)) == "Observation"


def test_a_pump_or_cgm_device_is_kept_and_an_inactive_one_is_not(bounds):
    pump = {
        "resourceType": "Device",
        "id": "d1",
        "status": "active",
        "patient": {"reference": "Patient/p1"},
        "type": {"coding": [{"system": "http://snomed.info/sct", "code": "69805005"}]},
    }
    assert bounds.keep("Device", pump)
    assert not bounds.keep("Device", {**pump, "status": "inactive"})
    stent = {**pump, "type": {"text": "Coronary artery stent"}}
    assert not bounds.keep("Device", stent)


def _by_patient(resources: list[dict[str, Any]]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Each patient's records, and every Medication (as the screen joins in the ones referenced)."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    medications = [("Medication", r) for r in resources if r["resourceType"] == "Medication"]
    for r in resources:
        if r["resourceType"] == "Medication" or r["resourceType"] not in EXPORT_TYPES:
            continue
        if r["resourceType"] == "Patient":
            pid = r["id"]
        else:
            ref = (r.get("subject") or r.get("patient") or {}).get("reference", "")
            pid = ref.split("/")[-1]
        groups.setdefault(pid, []).append((r["resourceType"], r))
    return {pid: items + medications for pid, items in groups.items()}


def _cards(outcome: Any) -> list[tuple[str, str, str]]:
    return [(c.rule_id, c.indicator, c.summary) for c in outcome.cards]


def test_what_the_bounds_keep_gives_each_example_the_cards_of_its_whole_record():
    knowledge = default_knowledge()
    bounds = Bounds.for_screen(knowledge, NOW)
    groups = _by_patient(example_resources())
    with_cards = 0
    for pid, items in groups.items():
        whole = evaluate_patient(pid, items, knowledge=knowledge, now=NOW)
        kept = [(t, r) for t, r in items if bounds.keep(t, r)]
        assert _cards(evaluate_patient(pid, kept, knowledge=knowledge, now=NOW)) == _cards(whole), pid
        with_cards += bool(whole.cards)
    assert with_cards > 10


def test_a_patient_with_nothing_left_but_its_patient_has_no_card():
    """Why the screen does not evaluate such patients: evaluated in full, none of the examples' Patients
    alone gives a card (nor does any other rule input with only a birth date)."""
    knowledge = default_knowledge()
    for pid, items in _by_patient(example_resources()).items():
        patient = next(r for t, r in items if t == "Patient")
        shown: list[Any] = []
        response = evaluate_index(
            ResourceIndex([patient]), patient_id=pid, knowledge=knowledge, now=NOW, shown=shown
        )
        assert response["cards"] == [] and shown == [], pid
        outcome = evaluate_patient(pid, [("Patient", patient)], knowledge=knowledge, now=NOW)
        assert outcome.status == SCREENED and outcome.cards == ()
