"""Reading an export without Spark: every bad line is one issue with its file, line and reason, and the
lines around it are read; byte-range parts read every line exactly once; the pre-filter keeps what the
rules could read."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from cds_hooks.bulk.ndjson import Issue, Part, Record, absolute_line, discover, plan, read_part
from cds_hooks.bulk.prefilter import Bounds
from cds_hooks.clinical.knowledge import default_knowledge

PATIENT = {"resourceType": "Patient", "id": "p1"}
GLUCOSE = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "subject": {"reference": "Patient/p1"},
    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
    "effectiveDateTime": "2026-11-20T08:00:00Z",
    "valueQuantity": {"value": 250, "unit": "mg/dL"},
}
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _line(resource: dict) -> str:
    return json.dumps(resource) + "\n"


def test_each_bad_line_is_one_issue_and_the_rest_is_read(tmp_path):
    path = tmp_path / "Mixed.ndjson"
    no_subject = {k: v for k, v in GLUCOSE.items() if k != "subject"}
    path.write_text(
        _line(PATIENT)
        + '{"resourceType": "Observation", "id": \n'  # malformed
        + _line({"resourceType": "Frobnicator", "id": "x"})  # unknown type
        + _line(no_subject)
        + "[1, 2]\n"
        + "\n"  # a blank line is no record and no issue
        + _line({"resourceType": "Encounter", "id": "e1"})  # a FHIR type the screen does not read
        + _line(GLUCOSE)
    )
    read = list(read_part(Part(str(path))))
    records = [(n, r.resource_type) for n, r in read if isinstance(r, Record)]
    issues = [(n, r) for n, r in read if isinstance(r, str)]
    assert records == [(1, "Patient"), (7, "Encounter"), (8, "Observation")]
    assert issues == [
        (2, "not valid JSON"),
        (3, "unknown resource type 'Frobnicator'"),
        (4, "Observation without a subject (a Patient reference)"),
        (5, "not a JSON object"),
    ]


def test_a_line_over_the_limit_is_skipped_without_being_held(tmp_path):
    path = tmp_path / "Observation.ndjson"
    path.write_text(
        _line(PATIENT) + '{"resourceType": "Observation", "note": "' + "x" * 5000 + '"}\n' + _line(GLUCOSE)
    )
    read = list(read_part(Part(str(path)), max_line_bytes=1000))
    assert [(n, r if isinstance(r, str) else r.resource_type) for n, r in read] == [
        (1, "Patient"),
        (2, "line longer than 1,000 bytes: not read"),
        (3, "Observation"),
    ]


def test_parts_of_a_big_file_read_each_line_once_and_issues_get_file_lines(tmp_path):
    path = tmp_path / "Observation.ndjson"
    lines = [_line({**GLUCOSE, "id": f"o{i}"}) for i in range(500)]
    lines[321] = "not json at all\n"
    path.write_text("".join(lines))
    parts = plan([str(path)], part_bytes=4096)
    assert len(parts) > 10
    ids, issues = [], []
    for part in parts:
        for n, r in read_part(part):
            if isinstance(r, Record):
                ids.append(r.resource["id"])
            else:
                issues.append(absolute_line(Issue(part.path, n, r, part.start)))
    assert sorted(ids) == sorted(f"o{i}" for i in range(500) if i != 321)
    assert issues == [Issue(str(path), 322, "not valid JSON")]


def test_gzip_files_and_a_manifest_listing_a_missing_file(tmp_path):
    with gzip.open(tmp_path / "Patient-000.ndjson.gz", "wt") as fh:
        fh.write(_line(PATIENT))
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "transactionTime": "2026-11-27T00:00:00Z",
                "output": [
                    {"type": "Patient", "url": "https://ehr.example.org/bulk/Patient-000.ndjson.gz"},
                    {"type": "Observation", "url": "https://ehr.example.org/bulk/Observation-000.ndjson"},
                ],
            }
        )
    )
    export = discover(tmp_path)
    assert export.files == (str(tmp_path / "Patient-000.ndjson.gz"),)
    assert export.issues == (
        Issue(
            str(tmp_path / "Observation-000.ndjson"), None, "listed in the manifest but the file is missing"
        ),
    )
    assert [r.patient_id for _, r in read_part(plan(export.files)[0])] == ["p1"]


def test_the_prefilter_keeps_what_the_rules_read_and_is_conservative_about_dates():
    bounds = Bounds.for_screen(default_knowledge(), NOW)
    assert bounds.keep("Observation", GLUCOSE)
    old = {**GLUCOSE, "effectiveDateTime": "2024-01-01T08:00:00Z"}
    assert not bounds.keep("Observation", old)
    assert bounds.keep("Observation", {**GLUCOSE, "effectiveDateTime": "2026"})  # partial: may be in window
    undated = {k: v for k, v in GLUCOSE.items() if k != "effectiveDateTime"}
    assert bounds.keep("Observation", undated)
    pulse = {
        **GLUCOSE,
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
    }
    assert not bounds.keep("Observation", pulse)
    # An antibody result with a local code only: the lab kinds' text patterns recognise it.
    local = {
        **GLUCOSE,
        "code": {"coding": [{"system": "urn:local", "code": "IAA"}], "text": "Insulin antibodies"},
    }
    assert bounds.keep("Observation", local)
    referenced = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": "Medication/m1"},
    }
    assert bounds.keep("MedicationRequest", referenced)  # the referenced Medication decides later
    lisinopril = {**referenced, "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"}}
    del lisinopril["medicationReference"]
    assert not bounds.keep("MedicationRequest", lisinopril)


def test_discover_refuses_what_is_no_export(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    for source in (tmp_path, tmp_path / "nothing-here"):
        try:
            discover(source)
        except ValueError as exc:
            assert str(source) in str(exc)
        else:
            raise AssertionError(f"{source} accepted")


def test_an_unreadable_gzip_costs_the_rest_of_that_file_only(tmp_path):
    data = gzip.compress(
        "".join(_line({**PATIENT, "id": os.urandom(24).hex()}) for _ in range(5000)).encode()
    )
    path = tmp_path / "Patient.ndjson.gz"
    path.write_bytes(data[: len(data) // 2])  # cut off mid-stream
    read = list(read_part(Part(str(path))))
    assert isinstance(read[0][1], Record)
    assert read[-1][1].startswith("the file could not be read from here on")
    assert Path(path).exists()
