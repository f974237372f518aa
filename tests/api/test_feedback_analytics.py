"""Feedback analytics: the report command and the stats endpoint, over a database filled by replaying
card responses and feedback (issue: order hooks and closing the loop, §2)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from cds_hooks.__main__ import main
from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from tests.builders import SERVICE, SERVICE_URL, bundle, empty_prefetch, glucose, porcine_request, request
from tests.conftest import make_settings

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FEEDBACK_URL = f"/cds-services/{SERVICE}/feedback"


def steroid_request(pid: str) -> dict:
    prefetch = empty_prefetch(pid)
    prefetch["medicationStatements"] = bundle(
        {
            "resourceType": "MedicationStatement",
            "id": "pred",
            "status": "active",
            "medicationCodeableConcept": {
                "coding": [{"system": "http://www.whocc.no/atc", "code": "H02AB07"}],
                "text": "Prednisone 20 mg",
            },
            "subject": {"reference": f"Patient/{pid}"},
        }
    )
    prefetch["conditions"] = bundle(
        {
            "resourceType": "Condition",
            "id": "t2",
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                ]
            },
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
            "subject": {"reference": f"Patient/{pid}"},
        }
    )
    # A measured finding: a diabetes diagnosis alone no longer fires the steroid card (issue 14).
    recent = (datetime.now(UTC) - timedelta(days=5)).isoformat()
    prefetch["labResults"] = bundle(glucose(pid, f"{pid}-glu", 250, recent))
    return request(pid, prefetch)


def fb(
    card: dict,
    outcome: str,
    after: timedelta,
    reason: tuple[str, str] | None = None,
    comment: str | None = None,
):
    item = {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": (T0 + after).isoformat()}
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    else:
        override = {}
        if reason:
            override["reason"] = {
                "system": "https://x.example/override",
                "code": reason[0],
                "display": reason[1],
            }
        if comment:
            override["userComment"] = comment
        item["overrideReason"] = override
    return item


@pytest.fixture
def replayed(tmp_path):
    """4 animal-insulin cards and 2 glucocorticoid cards issued at T0 (older cards a month before)."""
    settings = make_settings(tmp_path, stats_endpoint=True)
    app = create_app(settings, knowledge=default_knowledge())
    client = app.test_client()
    store = app.extensions["cds_hooks"].store
    # Replay: the service answers, and the card log is rewritten with the recorded issue time.
    responses = [client.post(SERVICE_URL, json=porcine_request(f"a{i}")).get_json() for i in range(4)]
    responses += [client.post(SERVICE_URL, json=steroid_request(f"s{i}")).get_json() for i in range(2)]
    app.extensions["cds_hooks"].recorder.flush()  # the card log is written off the request path
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM card_log")
    for i, response in enumerate(responses):
        store.record_cards(SERVICE, f"hook-{i}", response["cards"], now=T0)
    old = client.post(SERVICE_URL, json=porcine_request("old")).get_json()
    app.extensions["cds_hooks"].recorder.flush()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM card_log WHERE card_uuid = ?", (old["cards"][0]["uuid"],))
    store.record_cards(SERVICE, "hook-old", old["cards"], now=T0 - timedelta(days=30))

    animal = [r["cards"][0] for r in responses[:4]]
    steroid = [r["cards"][0] for r in responses[4:]]
    items = [
        fb(animal[0], "accepted", timedelta(seconds=30)),
        fb(animal[1], "overridden", timedelta(seconds=90), ("not-applicable", "Not applicable")),
        fb(animal[2], "overridden", timedelta(seconds=300), ("not-applicable", "Not applicable")),
        # animal[3]: no feedback
        fb(steroid[0], "overridden", timedelta(minutes=10), comment="steroid course is 3 days"),
        fb(steroid[1], "accepted", timedelta(minutes=20)),
        fb(old["cards"][0], "overridden", timedelta(days=-29), ("already-addressed", "Already addressed")),
    ]
    assert client.post(FEEDBACK_URL, json={"feedback": items}).get_json()["stored"] == 6
    return settings, client


def test_report_table_has_the_right_numbers(replayed, monkeypatch, capsys):
    settings, _ = replayed
    monkeypatch.setenv("CDS_HOOKS_DATABASE_URL", settings.resolved_database_url)
    assert main(["feedback", "report", "--since", "2026-11-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[1]: line for line in lines[2:] if line.strip()}
    animal = rows["animal-insulin-switch"].split()
    # shown, accepted, overridden, snoozed, acceptance, median (30, 90, 300 s → 90 s)
    assert animal[2:10] == ["4", "1", "2", "0", "25%", "90", "s", "Not"]
    assert "Not applicable (2)" in rows["animal-insulin-switch"]
    steroid = rows["glucocorticoid-hyperglycemia"].split()
    assert steroid[2:9] == ["2", "1", "1", "0", "50%", "15", "min"]  # median of 10 and 20 minutes
    assert "comment only (1)" in rows["glucocorticoid-hyperglycemia"]


def test_report_without_since_includes_older_cards_and_formats(replayed, monkeypatch, capsys):
    settings, _ = replayed
    monkeypatch.setenv("CDS_HOOKS_DATABASE_URL", settings.resolved_database_url)
    assert main(["feedback", "report", "--format", "csv"]) == 0
    rows = {r["rule_id"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["animal-insulin-switch"]["shown"] == "5"
    assert rows["animal-insulin-switch"]["overridden"] == "3"
    # The old card was overridden as "already addressed", which snoozes the rule (issue 14 item 12).
    assert rows["animal-insulin-switch"]["snoozed"] == "1"
    assert rows["glucocorticoid-hyperglycemia"]["snoozed"] == "0"
    assert rows["animal-insulin-switch"]["acceptance_rate"] == "0.2000"
    assert main(["feedback", "report", "--format", "json", "--since", "2026-11-01"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_rule = {r["rule_id"]: r for r in data["rules"]}
    assert by_rule["glucocorticoid-hyperglycemia"]["median_seconds_to_feedback"] == 900
    assert by_rule["animal-insulin-switch"]["top_override_reasons"] == [
        {"reason": "Not applicable", "count": 2}
    ]


def test_stats_endpoint_matches_the_report(replayed):
    _, client = replayed
    data = client.get(f"/cds-services/{SERVICE}/stats?since=2026-11-01").get_json()
    by_rule = {r["rule_id"]: r for r in data["rules"]}
    assert by_rule["animal-insulin-switch"]["shown"] == 4
    assert by_rule["animal-insulin-switch"]["acceptance_rate"] == 0.25
    assert client.get(f"/cds-services/{SERVICE}/stats?since=garbage").status_code == 400
    assert client.get("/cds-services/nope/stats").status_code == 404


def test_stats_endpoint_is_off_by_default(client):
    r = client.get(f"/cds-services/{SERVICE}/stats")
    assert r.status_code == 404 and r.get_json()["resourceType"] == "OperationOutcome"


def test_card_log_has_no_patient_identifiers(client, app):
    client.post(SERVICE_URL, json=porcine_request("very-identifiable-patient"))
    app.extensions["cds_hooks"].recorder.flush()
    with app.extensions["cds_hooks"].store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM card_log")]
    assert rows and "very-identifiable-patient" not in repr(rows)
