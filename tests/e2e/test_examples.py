"""End to end through the real FHIR server: every example patient gets exactly its expected cards.

The examples (``examples/``, see docs/examples.md) are loaded once per module into the session's
token-protected sekmet-fhir server through its REST API (one transaction Bundle each, dates shifted to
today) and the service is called like an EHR that sends no prefetch: it must fetch everything itself.
The other tests cover partial prefetch, paging (``next`` links) and referenced Medications, and prove
*what* the service fetched from the server's own access log, not from the service's internals.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.app import create_app
from cds_hooks.cli.demo import (
    example_bundle,
    examples_dir,
    load_examples,
    load_manifest,
    shift_dates,
    utc_today,
)
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.hooks.dispatch import evaluate_offline
from cds_hooks.testing.fhir_test_server import LocalFhirServer
from tests.builders import SERVICE_URL, bundle, request, topics, transaction
from tests.conftest import make_settings

MANIFEST = load_manifest()
EXAMPLES = MANIFEST["examples"]
BY_ID = {item["patient_id"]: item for item in EXAMPLES}
RULE_IDS = set(MANIFEST["rule_ids"])

SERVER_GET = re.compile(r'"GET (/fhir/[^ ]+) HTTP/1\.1" (\d{3})')


def example_with(rules: list[str], *, containing: str = "") -> dict[str, Any]:
    """The first example expecting exactly ``rules`` (and whose file name contains ``containing``)."""
    return next(i for i in EXAMPLES if i["expected_rules"] == rules and containing in i["file"])


def authorization(server: LocalFhirServer, token: str | None = None) -> dict[str, Any]:
    return {
        "access_token": token or server.token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }


def call(client, server: LocalFhirServer, pid: str, prefetch: dict[str, Any] | None = None, **extra: Any):
    extra.setdefault("fhirAuthorization", authorization(server))
    return client.post(SERVICE_URL, json=request(pid, prefetch, fhirServer=server.base_url, **extra))


class ServerLog:
    """The GET requests the FHIR server answered after ``mark()`` (its uvicorn access log)."""

    def __init__(self, server: LocalFhirServer):
        self.server = server
        self.offset = 0

    def mark(self) -> ServerLog:
        self.offset = os.path.getsize(self.server.log_path)
        return self

    def gets(self) -> list[str]:
        with open(self.server.log_path, "rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        return [m.group(1) for m in SERVER_GET.finditer(text)]

    def fetched(self, resource_type: str) -> list[str]:
        return [
            p
            for p in self.gets()
            if p.startswith(f"/fhir/{resource_type}?") or p.startswith(f"/fhir/{resource_type}/")
        ]


@pytest.fixture(scope="module")
def examples_loaded(fhir_server: LocalFhirServer) -> list[dict[str, Any]]:
    """Every example on the server, dates moved so that the manifest's anchor date is today (UTC)."""
    return load_examples(fhir_server, today=utc_today())


@pytest.fixture
def server_log(fhir_server: LocalFhirServer) -> ServerLog:
    return ServerLog(fhir_server).mark()


# ------------------------------------------------------------------------------- the examples


def test_the_population_covers_every_rule_and_the_seed_situations():
    assert len(EXAMPLES) >= 30
    fired = {rule for item in EXAMPLES for rule in item["expected_rules"]}
    assert fired == RULE_IDS
    assert sum(1 for item in EXAMPLES if not item["expected_rules"]) >= 10  # negatives and controls
    for item in EXAMPLES:
        assert set(item["expected_rules"]) <= RULE_IDS
        assert item["expected_rules"] == sorted(item["expected_rules"])
        assert re.fullmatch(r"ex\d{2}", item["patient_id"])
        assert item["file"].startswith(item["patient_id"][2:] + "-")


@pytest.mark.parametrize("item", EXAMPLES, ids=[i["file"][:-5] for i in EXAMPLES])
def test_example_gets_exactly_its_expected_cards_with_no_prefetch(client, fhir_server, examples_loaded, item):
    r = call(client, fhir_server, item["patient_id"])
    assert r.status_code == 200, r.get_data(as_text=True)
    cards = r.get_json()["cards"]
    assert sorted(card["source"]["topic"]["code"] for card in cards) == item["expected_rules"], item[
        "description"
    ]
    for card in cards:
        assert len(card["summary"]) < 140
        assert "Evidence" in card["detail"]


def test_example_bundles_are_transactions_of_put_entries_with_patient_prefixed_ids():
    directory = examples_dir()
    for item in EXAMPLES:
        data = json.loads((directory / item["file"]).read_text(encoding="utf-8"))
        assert data["resourceType"] == "Bundle" and data["type"] == "transaction"
        pid = item["patient_id"]
        types = set()
        for entry in data["entry"]:
            resource = entry["resource"]
            types.add(resource["resourceType"])
            assert entry["request"] == {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
            assert resource["id"] == pid or resource["id"].startswith(pid + "-")
            for ref in re.findall(r'"reference": ?"([^"]+)"', json.dumps(resource)):
                assert ref.startswith("#") or ref.split("/", 1)[1].split("-")[0] == pid, ref
        # a real chart: demographics plus years of unrelated history
        assert {"Patient", "Observation", "Condition", "Encounter", "DiagnosticReport"} <= types
        assert len(data["entry"]) >= 60
        dates = sorted(set(re.findall(r'"effectiveDateTime": ?"(\d{4}-\d{2}-\d{2})', json.dumps(data))))
        span = date.fromisoformat(dates[-1]) - date.fromisoformat(dates[0])
        assert span >= timedelta(days=700), item["file"]


@pytest.mark.parametrize("years", [1, 3])
@pytest.mark.parametrize("clock", [time(0, 20), time(23, 40)])
def test_examples_fire_the_same_cards_when_loaded_years_later(years, clock):
    """The loader shifts every date by (load day − anchor): windows hold whenever the tests run, at any
    time of day (evaluated offline at a UTC clock near either end of the day)."""
    later = date.fromisoformat(MANIFEST["anchor_date"]) + timedelta(days=365 * years + 17)
    now = datetime.combine(later, clock, tzinfo=UTC)
    for item in EXAMPLES:
        resources = [e["resource"] for e in example_bundle(item, manifest=MANIFEST, today=later)["entry"]]
        body = request(item["patient_id"], {"everything": bundle(*resources)})
        assert (
            topics(evaluate_offline(body, now=now, knowledge=default_knowledge())) == item["expected_rules"]
        ), item["file"]


def test_shift_dates_moves_dates_and_datetimes_only():
    resource = {
        "resourceType": "Observation",
        "id": "2020-01-01",
        "effectiveDateTime": "2026-02-27T08:30:00Z",
        "issued": "2026-02-27T14:15:00+01:00",
        "effectivePeriod": {"start": "2026-02-28", "end": "2026"},
        "code": {"text": "2026-02-27", "coding": [{"code": "2026-02-27"}]},
        "valueString": "1:160",
        "note": [{"time": "2026-12-31T23:59:59.123Z"}],
    }
    shifted = shift_dates(resource, 2)
    assert shifted["effectiveDateTime"] == "2026-03-01T08:30:00Z"
    assert shifted["issued"] == "2026-03-01T14:15:00+01:00"
    assert shifted["effectivePeriod"] == {"start": "2026-03-02", "end": "2026"}  # partial date kept
    assert shifted["note"][0]["time"] == "2027-01-02T23:59:59.123Z"
    assert shifted["id"] == "2020-01-01" and shifted["code"] == resource["code"]
    assert shifted["valueString"] == "1:160"
    assert resource["effectiveDateTime"] == "2026-02-27T08:30:00Z"  # the input is not changed


def test_committed_examples_match_the_generator(tmp_path: Path):
    """Regenerating at the committed anchor gives the same files, patients, ids and expectations
    (background values come from carebundle's seeded draw and are not compared)."""
    pytest.importorskip("carebundle")
    from scripts.examples.write import generate

    generate(date.fromisoformat(MANIFEST["anchor_date"]), tmp_path)
    fresh = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert fresh == MANIFEST
    for item in EXAMPLES:
        committed = json.loads((examples_dir() / item["file"]).read_text(encoding="utf-8"))
        regenerated = json.loads((tmp_path / item["file"]).read_text(encoding="utf-8"))
        assert [e["request"]["url"] for e in regenerated["entry"]] == [
            e["request"]["url"] for e in committed["entry"]
        ]


# ------------------------------------------------------------------------------- partial prefetch


def test_partial_prefetch_uses_supplied_keys_and_fetches_only_the_absent_ones(
    client, fhir_server, examples_loaded, server_log
):
    """An empty `conditions` Bundle is the EHR saying "no conditions": the ataxia-telangiectasia
    condition on the server is not fetched, so its card does not fire, while the absent keys are."""
    item = example_with(["ataxia-telangiectasia-ir"], containing="hyperglycaemia")
    pid = item["patient_id"]
    r = call(client, fhir_server, pid, {"conditions": bundle()})
    assert r.status_code == 200
    assert r.get_json() == {"cards": []}
    assert server_log.fetched("Condition") == []
    assert len(server_log.fetched("Observation")) >= 2  # observations and labResults
    assert server_log.fetched("MedicationStatement") and server_log.fetched("MedicationRequest")
    assert server_log.fetched("Patient") == [f"/fhir/Patient/{pid}"]


def test_partial_prefetch_combines_supplied_and_fetched_data(
    client, fhir_server, examples_loaded, server_log
):
    """The condition comes from the prefetch, the glucose and HbA1c that make the card from the server."""
    item = example_with(["ataxia-telangiectasia-ir"], containing="hyperglycaemia")
    pid = item["patient_id"]
    conditions = fhir_server.get("Condition", {"patient": pid})
    patient = fhir_server.get(f"Patient/{pid}")
    server_log.mark()
    r = call(client, fhir_server, pid, {"patient": patient, "conditions": conditions})
    assert r.status_code == 200
    assert topics(r.get_json()) == ["ataxia-telangiectasia-ir"]
    assert server_log.fetched("Condition") == [] and server_log.fetched("Patient") == []
    assert len(server_log.fetched("Observation")) >= 2


# ------------------------------------------------------------------------------- paging

PAGED = "e2e-paging"
PAGED_READINGS = 230  # more than the templates' _count=200


@pytest.fixture(scope="module")
def paged_patient(fhir_server: LocalFhirServer) -> str:
    """230 point-of-care glucose results in the last 60 days (newest first they fill the first page of
    200) and, on the second page, a positive insulin-receptor antibody 200 days ago that carries only a
    local code and text: the type B card fires only if the service follows the `next` link."""
    today = utc_today()
    category = [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
            ]
        }
    ]
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": PAGED, "gender": "female", "birthDate": "1979-03-02"}
    ]
    for i in range(PAGED_READINGS):
        when = datetime.combine(today - timedelta(days=2), time(20, 0), tzinfo=UTC) - timedelta(hours=6 * i)
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"{PAGED}-glu-{i:03d}",
                "status": "final",
                "category": category,
                "code": {
                    "coding": [{"system": "http://loinc.org", "code": "41653-7"}],
                    "text": "POC glucose",
                },
                "subject": {"reference": f"Patient/{PAGED}"},
                "effectiveDateTime": when.isoformat().replace("+00:00", "Z"),
                "valueQuantity": {
                    "value": 100 + (i * 7) % 40,
                    "unit": "mg/dL",
                    "system": "http://unitsofmeasure.org",
                    "code": "mg/dL",
                },
            }
        )
    resources.append(
        {
            "resourceType": "Observation",
            "id": f"{PAGED}-insr",
            "status": "final",
            "category": category,
            "code": {
                "coding": [{"system": "urn:oid:2.16.840.1.113883.3.9999.5", "code": "INSRAB"}],
                "text": "Insulin receptor antibody",
            },
            "subject": {"reference": f"Patient/{PAGED}"},
            "effectiveDateTime": (today - timedelta(days=200)).isoformat(),
            "valueString": "Positive",
        }
    )
    fhir_server.load_bundle(transaction(*resources))
    return PAGED


def test_paging_follows_next_links_to_data_beyond_the_first_page(
    client, fhir_server, paged_patient, server_log
):
    first = fhir_server.get(
        "Observation", {"patient": paged_patient, "category": "laboratory", "_sort": "-date", "_count": 200}
    )
    assert first["total"] == PAGED_READINGS + 1 and len(first["entry"]) == 200
    assert f"{paged_patient}-insr" not in {e["resource"]["id"] for e in first["entry"]}  # it is on page 2
    server_log.mark()
    r = call(client, fhir_server, paged_patient)
    assert r.status_code == 200
    assert topics(r.get_json()) == ["type-b-insulin-resistance"]
    assert "Insulin receptor antibod" in r.get_json()["cards"][0]["detail"]
    assert any("_offset=200" in path for path in server_log.fetched("Observation"))


def test_paging_cap_of_one_page_makes_the_same_request_fail_with_412(tmp_path, fhir_server, paged_patient):
    """Proof that the data needed a second page: with the service limited to one page per key, it
    refuses to answer from incomplete data."""
    app = create_app(make_settings(tmp_path, fhir_max_pages=1), knowledge=default_knowledge())
    try:
        r = call(app.test_client(), fhir_server, paged_patient)
    finally:
        app.extensions["cds_hooks"].store.dispose()
    assert r.status_code == 412
    assert "paging limit" in r.get_json()["issue"][0]["diagnostics"]


def test_prefetch_first_page_with_next_link_is_followed(client, fhir_server, paged_patient, server_log):
    """The EHR prefetched only the first page (50 results) of `labResults`: the service pages on."""
    page = fhir_server.get(
        "Observation", {"patient": paged_patient, "category": "laboratory", "_sort": "-date", "_count": 50}
    )
    assert any(link["relation"] == "next" for link in page["link"])
    server_log.mark()
    r = call(client, fhir_server, paged_patient, {"labResults": page})
    assert r.status_code == 200
    assert topics(r.get_json()) == ["type-b-insulin-resistance"]
    assert any("_count=50" in p and "_offset=200" in p for p in server_log.fetched("Observation"))


# ------------------------------------------------------------------------------- referenced Medications


def test_referenced_medication_only_on_the_server_is_read(client, fhir_server, examples_loaded, server_log):
    item = example_with(["animal-insulin-switch"], containing="medication-reference")
    pid = item["patient_id"]
    r = call(client, fhir_server, pid)
    assert r.status_code == 200
    assert topics(r.get_json()) == ["animal-insulin-switch"]
    assert "Hypurin Bovine Lente" in r.get_json()["cards"][0]["detail"]
    reads = [p for p in server_log.fetched("Medication") if p.startswith("/fhir/Medication/")]
    assert reads == [f"/fhir/Medication/{pid}-med-001"]


def test_prefetched_request_without_its_medication_gets_the_medication_read(
    client, fhir_server, examples_loaded, server_log
):
    """The EHR sent the MedicationRequest but not the Medication it references."""
    pid = example_with(["animal-insulin-switch"], containing="medication-reference")["patient_id"]
    requests = fhir_server.get("MedicationRequest", {"patient": pid, "_count": 200})
    assert not any(e["resource"]["resourceType"] == "Medication" for e in requests["entry"])
    server_log.mark()
    r = call(client, fhir_server, pid, {"medicationRequests": requests})
    assert r.status_code == 200 and topics(r.get_json()) == ["animal-insulin-switch"]
    assert server_log.fetched("MedicationRequest") == []
    assert [p for p in server_log.fetched("Medication") if p.startswith("/fhir/Medication/")] == [
        f"/fhir/Medication/{pid}-med-001"
    ]


def test_included_medication_needs_no_extra_read(client, fhir_server, examples_loaded, server_log):
    """A prefetch answered with `_include=MedicationRequest:medication` already holds the Medication."""
    pid = example_with(["animal-insulin-switch"], containing="medication-reference")["patient_id"]
    included = fhir_server.get(
        "MedicationRequest", {"patient": pid, "_include": "MedicationRequest:medication", "_count": 200}
    )
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in included["entry"]}
    assert ("Medication", "include") in modes
    server_log.mark()
    r = call(client, fhir_server, pid, {"medicationRequests": included})
    assert r.status_code == 200 and topics(r.get_json()) == ["animal-insulin-switch"]
    assert server_log.fetched("Medication") == [] and server_log.fetched("MedicationRequest") == []


# ------------------------------------------------------------------------------- the token


def test_wrong_token_gets_401_from_the_server_and_412_from_the_service(
    client, fhir_server, examples_loaded, server_log
):
    pid = example_with(["insulin-antibody-workup"])["patient_id"]
    r = call(client, fhir_server, pid, fhirAuthorization=authorization(fhir_server, "not-the-token"))
    assert r.status_code == 412
    assert "401" in r.get_json()["issue"][0]["diagnostics"]
    assert "not-the-token" not in r.get_data(as_text=True)
    with open(fhir_server.log_path, "rb") as log:
        log.seek(server_log.offset)
        statuses = [m.group(2) for m in SERVER_GET.finditer(log.read().decode(errors="replace"))]
    assert statuses and set(statuses) == {"401"}


def test_docs_table_lists_every_example_with_its_expected_rules():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "examples.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip().strip("`"): line for line in docs.splitlines() if line.startswith("| `ex")
    }
    assert set(rows) == set(BY_ID)
    for pid, item in BY_ID.items():
        cells = [c.strip() for c in rows[pid].split("|")]
        assert item["file"] in cells[2]
        rules = sorted(re.findall(r"`([a-z-]+)`", cells[4]))
        assert rules == item["expected_rules"], pid
