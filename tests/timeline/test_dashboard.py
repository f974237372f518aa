"""The rule dashboard over a database filled by replaying card responses and feedback: its numbers are
the feedback report's, it is refused without the admin token, it names no patient, and it passes
axe-core in Chromium."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_hooks.__main__ import main
from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.process.config import Settings
from tests.builders import SERVICE, SERVICE_URL, porcine_request
from tests.conftest import make_settings

from .conftest import LiveService, screenshot, serious_violations

TOKEN = "committee-token"
FEEDBACK_URL = f"/cds-services/{SERVICE}/feedback"
T0 = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)


def feedback(
    card: dict[str, Any], outcome: str, after: timedelta, reason: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": outcome,
        "outcomeTimestamp": (T0 + after).isoformat(),
    }
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    else:
        item["overrideReason"] = {
            "reason": {"system": "https://x.example/o", "code": reason, "display": reason}
        }
    return item


def replay(client: FlaskClient, store: Any) -> None:
    """Five animal-insulin cards: four this week (1 accepted, 2 overridden), one three weeks earlier."""
    responses = [client.post(SERVICE_URL, json=porcine_request(f"dash-{i}")).get_json() for i in range(5)]
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM card_log")
    for i, response in enumerate(responses[:4]):
        store.record_cards(SERVICE, f"hook-{i}", response["cards"], now=T0)
    store.record_cards(SERVICE, "hook-old", responses[4]["cards"], now=T0 - timedelta(days=21))
    cards = [r["cards"][0] for r in responses]
    items = [
        feedback(cards[0], "accepted", timedelta(seconds=40)),
        feedback(cards[1], "overridden", timedelta(minutes=5), "Not applicable"),
        feedback(cards[2], "overridden", timedelta(minutes=9), "Not applicable"),
        feedback(cards[4], "accepted", timedelta(days=-21, minutes=2)),
    ]
    assert client.post(FEEDBACK_URL, json={"feedback": items}).get_json()["stored"] == 4


@pytest.fixture
def dashboard(tmp_path: Path) -> Any:
    settings = make_settings(tmp_path, admin_token=TOKEN)
    app = create_app(settings, knowledge=default_knowledge())
    client = app.test_client()
    replay(client, app.extensions["cds_hooks"].store)
    yield settings, client
    app.extensions["cds_hooks"].store.dispose()


def report(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> dict:
    monkeypatch.setenv("CDS_HOOKS_DATABASE_URL", settings.resolved_database_url)
    capsys.readouterr()
    assert main(["feedback", "report", "--format", "json"]) == 0
    return {r["rule_id"]: r for r in json.loads(capsys.readouterr().out)["rules"]}


def cells(html: str, rule: str) -> list[str]:
    row = re.search(rf'<tr data-rule="{rule}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, f"no totals row for {rule}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row.group(1), re.S)]


def test_dashboard_numbers_are_the_feedback_report(dashboard, monkeypatch, capsys):
    settings, client = dashboard
    response = client.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    expected = report(settings, monkeypatch, capsys)["animal-insulin-switch"]
    shown, accepted, overridden, snoozed, rate, median = cells(html, "animal-insulin-switch")
    assert (
        [int(shown), int(accepted), int(overridden), int(snoozed)]
        == [
            expected["shown"],
            expected["accepted"],
            expected["overridden"],
            expected["snoozed"],
        ]
        == [5, 2, 2, 0]
    )
    assert rate == f"{expected['acceptance_rate']:.0%}" == "40%"
    assert median == "4 min"  # median of 40 s, 120 s, 300 s, 540 s = 210 s
    assert expected["median_seconds_to_feedback"] == 210
    assert "Not applicable (2)" in html
    # Per week: this week's 4 and the earlier week's 1 add up to the report's total.
    assert "<svg" in html and 'class="mark' in html
    assert "tdd_extreme = 200 U/day" in html or "labile" in html  # the rule's thresholds in force
    assert re.search(r"Knowledge version (sha256:[0-9a-f]{12}|\S+)", html)
    for pid in (f"dash-{i}" for i in range(5)):
        assert pid not in html


def test_weekly_rows_add_up_to_the_total(dashboard):
    _, client = dashboard
    html = client.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    section = html.split('id="rule-1"', 1)[1]
    weekly = re.findall(r'<tr><th scope="row">(\d{4}-\d\d-\d\d)</th><td>(\d+)</td><td>(\d+)</td>', section)
    assert len(weekly) == 2
    assert sum(int(shown) for _, shown, _ in weekly) == 5
    assert sorted(int(shown) for _, shown, _ in weekly) == [1, 4]


def test_dashboard_is_refused_without_the_admin_token(dashboard, tmp_path: Path):
    _, client = dashboard
    assert client.get("/dashboard").status_code == 401
    assert client.get("/dashboard", headers={"Authorization": "Bearer wrong"}).status_code == 401
    refused = client.post("/dashboard/sign-in", data={"token": "wrong"})
    assert refused.status_code == 401 and "not the dashboard" in refused.get_data(as_text=True)
    assert "Not applicable" not in refused.get_data(as_text=True)
    signed_in = client.post("/dashboard/sign-in", data={"token": TOKEN})
    assert signed_in.status_code == 303
    assert client.get("/dashboard").status_code == 200

    off = create_app(make_settings(tmp_path / "off"), knowledge=default_knowledge())
    assert off.test_client().get("/dashboard", headers={"Authorization": "Bearer "}).status_code == 404
    off.extensions["cds_hooks"].store.dispose()


def test_dashboard_in_chromium_passes_axe(chromium: Any, axe_source: str, live_service: LiveService):
    store = live_service.app.extensions["cds_hooks"].store
    replay(live_service.app.test_client(), store)
    context = chromium.new_context(viewport={"width": 1024, "height": 800}, bypass_csp=True)
    page = context.new_page()
    assert page.goto(f"{live_service.url}/dashboard").status == 401  # the sign-in page
    assert serious_violations(page, axe_source) == []
    page.fill("#token", "committee-token")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#totals").count() == 1
    screenshot(page, "dashboard.png")
    assert serious_violations(page, axe_source) == []
    context.close()
