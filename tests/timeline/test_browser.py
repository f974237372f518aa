"""The SMART app in headless Chromium, launched by the SMART launcher as an EHR would, and both pages
checked with axe-core.

The chain is real end to end: the card comes from the service (which read the FHIR server), its
``smart`` link is launched by the launcher (authorization server + FHIR proxy) in front of sekmet-fhir,
the browser follows the OAuth redirects, and the page's values are compared with what the FHIR server
itself holds.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

import cds_hooks.web.smart_app as smart_app
from cds_hooks.testing.fhir_test_server import LocalFhirServer

from .conftest import LiveService, screenshot, serious_violations
from .smart_launcher import SmartLauncher, launch_parameter

GLUCOCORTICOID = "glucocorticoid-hyperglycemia"


def cards_for(service: LiveService, fhir_base: str, patient_id: str) -> list[dict[str, Any]]:
    body = {
        "hook": "patient-view",
        "hookInstance": f"timeline-{patient_id}",
        "fhirServer": fhir_base,
        "context": {"userId": "Practitioner/test", "patientId": patient_id},
    }
    response = requests.post(f"{service.url}/cds-services/immune-insulin-resistance", json=body, timeout=60)
    response.raise_for_status()
    return response.json()["cards"]


def server_glucose(server: LocalFhirServer, patient_id: str) -> list[tuple[str, float, str]]:
    """(date, value, unit) of the patient's glucose results within two years, read from the FHIR server."""
    bundle = server.get("Observation", {"patient": patient_id, "_count": 500})
    since = datetime.now(UTC) - timedelta(days=730)
    found = []
    for entry in bundle.get("entry", []):
        obs = entry["resource"]
        names = [obs["code"].get("text", "")] + [c.get("display", "") for c in obs["code"].get("coding", [])]
        when = datetime.fromisoformat(obs["effectiveDateTime"].replace("Z", "+00:00"))
        is_glucose = any(name.lower().startswith("glucose") for name in names)
        if is_glucose and "valueQuantity" in obs and when >= since and obs["status"] == "final":
            quantity = obs["valueQuantity"]
            found.append((when.date().isoformat(), float(quantity["value"]), quantity.get("unit", "")))
    return found


def table_rows(page: Any) -> list[list[str]]:
    return page.eval_on_selector_all(
        "table.data tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )


def _number(text: str) -> float:
    return float(re.match(r"[\d.]+", text).group(0))  # type: ignore[union-attr]


def test_a_card_smart_link_launches_the_timeline_through_the_ehr(
    chromium: Any,
    axe_source: str,
    smart_launcher: SmartLauncher,
    example_server: LocalFhirServer,
    live_service: LiveService,
    monkeypatch: pytest.MonkeyPatch,
):
    issued: list[str] = []
    real_exchange = smart_app.exchange_code

    def recording_exchange(**kwargs: Any) -> dict[str, Any]:
        token = real_exchange(**kwargs)
        issued.append(token["access_token"])
        return token

    monkeypatch.setattr(smart_app, "exchange_code", recording_exchange)

    # The card the EHR shows, with its smart link, from the service reading the FHIR server.
    cards = cards_for(live_service, example_server.base_url, "ex24")
    card = next(c for c in cards if c["source"]["topic"]["code"] == GLUCOCORTICOID)
    link = next(link for link in card["links"] if link["type"] == "smart")
    assert link["url"] == f"{live_service.url}/app/launch"
    assert json.loads(link["appContext"]) == {"rule": GLUCOCORTICOID, "card": card["uuid"]}

    # The EHR launches the link: launch + iss (and the card's appContext) on the launch URL.
    query = {"iss": smart_launcher.iss, "launch": launch_parameter("ex24"), "appContext": link["appContext"]}
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    response = page.goto(f"{link['url']}?{urlencode(query)}")
    assert response is not None and response.status == 200
    assert page.url.startswith(f"{live_service.url}/app/")
    assert any(u.startswith(f"{smart_launcher.url}/v/r4/auth/authorize") for u in urls)
    assert any(u.startswith(f"{live_service.url}/app/callback?code=") for u in urls)
    assert len(issued) == 1

    # The chart, with one point per glucose result the FHIR server holds in the last two years.
    glucose = server_glucose(example_server, "ex24")
    assert glucose, "ex24 has glucose results on the server"
    assert page.locator("svg.chart").count() == 1
    marks = (
        "svg.chart circle.mark.glucose, svg.chart circle.mark.glucose_fasting, svg.chart circle.mark.ogtt_2h"
    )
    assert page.locator(marks).count() == len(glucose)
    assert page.locator("svg.chart line.ref").count() >= 4  # the glucose, HbA1c and dose thresholds

    # "Why this card" for the launched rule: it fires, with the hyperglycaemia criterion met.
    why = page.locator(f"#why-{GLUCOCORTICOID}")
    assert "the rule fires" in why.locator("caption").inner_text()
    rows = why.locator("tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    hyper = next(t for t in texts if t.startswith("✔") and "Hyperglycaemia" in t)
    assert "glucose hyper random ≥ 200 mg/dL" in hyper
    steroid = next(t for t in texts if "systemic glucocorticoid" in t)
    assert steroid.startswith("✔") and "prednisolone" in steroid.lower()

    # Every glucose value on the server is in the text table, in the unit the server sent it in.
    page_rows = {"mg/dL": table_rows(page)}
    page.get_by_role("link", name="mmol/L").click()
    page.wait_for_load_state()
    assert "unit=mmol" in page.url
    page_rows["mmol/L"] = table_rows(page)
    for day, value, unit in glucose:
        shown = [_number(r[2]) for r in page_rows[unit] if r[0] == day and "glucose" in r[1].lower()]
        assert any(abs(v - value) < 0.006 for v in shown), (day, value, unit, shown)

    shot = screenshot(page, "timeline-ex24.png")
    assert shot.stat().st_size > 10_000

    assert serious_violations(page, axe_source) == []

    # The access token is never in a page, a URL or the log.
    token = issued[0]
    assert token not in page.content()
    assert not [u for u in urls if token in u]
    assert not [line for line in live_service.log.lines if token in line]
    context.close()


def test_the_timeline_reads_an_open_server_and_fits_a_phone(
    chromium: Any, example_server: LocalFhirServer, live_service: LiveService
):
    context = chromium.new_context(viewport={"width": 400, "height": 800}, bypass_csp=True)
    page = context.new_page()
    query = urlencode(
        {"iss": example_server.base_url, "patient": "ex25", "rule": "type-b-insulin-resistance"}
    )
    response = page.goto(f"{live_service.url}/app/open?{query}")
    assert response is not None and response.status == 200
    assert "open FHIR server" in page.locator("header").inner_text()
    caption = page.locator("#why-type-b-insulin-resistance caption").inner_text()
    assert "the rule fires (confirmed)" in caption
    # The positive insulin-receptor antibody on the server is a filled (positive) marker.
    assert page.locator("svg.chart circle.mark.positive").count() >= 1
    # Nothing wider than the 400 px panel.
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    screenshot(page, "timeline-ex25-400px.png")
    context.close()
