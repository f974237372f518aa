"""Issue 16.1 against the real FHIR server: the service reads only the window the rules need.

The server's own request log (uvicorn's access log, ``ServerLog``) is the witness: which searches were
sent and which pages were fetched."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from cds_hooks.cli.demo import utc_today
from cds_hooks.fhir.client import FhirClient, build_session
from cds_hooks.testing.fhir_test_server import LocalFhirServer
from tests.builders import transaction
from tests.e2e.test_examples import ServerLog, call

WINDOWED = "window-labs"
IN_WINDOW = 7  # results within the last 100 days
OLD = 23  # results 400 to 1,500 days ago: outside every lookback (the longest is 365 days)
PAGE = 5
LAB = [
    {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
        ]
    }
]


def _glucose(pid: str, number: int, when: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"{pid}-glu-{number:02d}",
        "status": "final",
        "category": LAB,
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when.isoformat().replace("+00:00", "Z"),
        "valueQuantity": {
            "value": 104,
            "unit": "mg/dL",
            "system": "http://unitsofmeasure.org",
            "code": "mg/dL",
        },
    }


@pytest.fixture(scope="module")
def windowed_patient(fhir_server: LocalFhirServer) -> str:
    """7 recent and 23 old laboratory results: newest first, pages of 5 leave the window on page 2."""
    noon = datetime.combine(utc_today(), time(12), tzinfo=UTC)
    recent = [noon - timedelta(days=3 + 12 * i) for i in range(IN_WINDOW)]
    old = [noon - timedelta(days=400 + 48 * i) for i in range(OLD)]
    resources = [{"resourceType": "Patient", "id": WINDOWED, "gender": "male", "birthDate": "1961-04-02"}]
    resources += [_glucose(WINDOWED, n, when) for n, when in enumerate(recent + old)]
    fhir_server.load_bundle(transaction(*resources))
    return WINDOWED


def _offsets(paths: list[str]) -> list[int]:
    return sorted(int(p.split("_offset=")[1].split("&")[0]) for p in paths if "_offset=" in p)


def test_fallback_observation_searches_carry_the_date_bound(client, fhir_server, windowed_patient):
    """Both Observation keys are fetched with date=ge<today − 366 days> (the longest lookback in
    knowledge/ is 365 days, plus one for time zones); the other searches carry no bound."""
    log = ServerLog(fhir_server).mark()
    r = call(client, fhir_server, windowed_patient)
    assert r.status_code == 200
    observation_searches = log.fetched("Observation")
    assert len(observation_searches) == 2  # observations and labResults, one page each
    bound = f"date=ge{(utc_today() - timedelta(days=366)).isoformat()}"
    assert all(bound in path for path in observation_searches), observation_searches
    assert not any("date=" in path for path in log.fetched("Condition") + log.fetched("MedicationRequest"))


def test_prefetch_bundle_paging_stops_once_a_page_passes_the_window(
    client, fhir_server, windowed_patient, caplog
):
    """The EHR prefetched the first page of an unbounded search sorted newest first: the service follows
    `next` to page 2, which reaches past the window, and fetches no page after it."""
    first = fhir_server.get(
        "Observation",
        {"patient": windowed_patient, "category": "laboratory", "_sort": "-date", "_count": PAGE},
    )
    assert first["total"] == IN_WINDOW + OLD
    log = ServerLog(fhir_server).mark()
    with caplog.at_level(logging.INFO, logger="cds_hooks.fhir.client"):
        r = call(client, fhir_server, windowed_patient, {"labResults": first})
    assert r.status_code == 200
    paged = [p for p in log.fetched("Observation") if f"_count={PAGE}" in p]
    # Page 2 (offset 5) holds the last two recent results and the first old ones: nothing after it.
    assert _offsets(paged) == [PAGE]
    assert any("paging stopped early after 2 page(s)" in m for m in caplog.messages)


def test_fetched_search_paging_stops_once_a_page_passes_the_window(fhir_server, windowed_patient):
    """The same for a search the client runs itself (a server that ignored the date bound would send
    all 30 results): with `since`, the client stops after the page that crosses it."""
    client = FhirClient(fhir_server.base_url, build_session(), access_token=fhir_server.token)
    since = datetime.combine(utc_today() - timedelta(days=366), time(0), tzinfo=UTC)
    log = ServerLog(fhir_server).mark()
    search = f"Observation?patient={windowed_patient}&category=laboratory&_sort=-date&_count={PAGE}"
    resources = client.search(search, since=since)
    assert len(resources) == 2 * PAGE  # pages 1 and 2; the 7 recent results are all among them
    assert _offsets(log.fetched("Observation")) == [PAGE]
    unbounded = client.search(search)  # the control: without `since` every page is read
    assert len(unbounded) == IN_WINDOW + OLD
