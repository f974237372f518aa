"""Feedback (FB1–FB4): strict validation, idempotent storage, concurrency without loss."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.builders import SERVICE, SERVICE_URL, porcine_request

FEEDBACK_URL = f"/cds-services/{SERVICE}/feedback"


def item(card: str, outcome: str = "overridden", **extra):
    body = {"card": card, "outcome": outcome, "outcomeTimestamp": "2026-11-27T10:05:31Z"}
    if outcome == "overridden" and "overrideReason" not in extra:
        body["overrideReason"] = {
            "reason": {"code": "not-applicable", "system": "https://x.example/o"},
            "userComment": "seen by endocrinology",
        }
    body.update(extra)
    return body


def test_fb2_accepted_and_overridden_items_are_stored(client, app):
    card = client.post(SERVICE_URL, json=porcine_request()).get_json()["cards"][0]
    accepted = item(card["uuid"], "accepted", acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}])
    r = client.post(FEEDBACK_URL, json={"feedback": [accepted, item(card["uuid"])]})
    assert r.status_code == 200
    assert r.get_json() == {"received": 2, "stored": 2, "duplicates": 0}
    assert app.extensions["cds_hooks"].store.count_feedback() == 2


def test_fb3_same_feedback_twice_is_stored_once(client, app):
    payload = {"feedback": [item(str(uuid.uuid4()))]}
    first = client.post(FEEDBACK_URL, json=payload).get_json()
    second = client.post(FEEDBACK_URL, json=payload).get_json()
    assert first["stored"] == 1 and second["stored"] == 0 and second["duplicates"] == 1
    assert app.extensions["cds_hooks"].store.count_feedback() == 1


def test_unknown_card_uuid_is_accepted_but_flagged(client):
    unknown = str(uuid.uuid4())
    r = client.post(FEEDBACK_URL, json={"feedback": [item(unknown)]})
    assert r.status_code == 200
    assert r.get_json()["unknownCards"] == [unknown]


def test_sandbox_style_dismissal_without_card_uuid_is_tolerated(client):
    """The Sandbox sends `overridden` on dismiss even without card.uuid, and reason without display."""
    r = client.post(
        FEEDBACK_URL,
        json={
            "feedback": [
                {
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-11-27T10:05:31Z",
                    "overrideReason": {"reason": {"code": "x", "system": "https://x.example/o"}},
                }
            ]
        },
    )
    assert r.status_code == 200 and r.get_json()["stored"] == 1


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"outcome": "maybe"}, "cds-fb-1"),
        ({"outcome": "accepted"}, "cds-fb-2"),
        ({"overrideReason": {}}, "cds-fb-3"),
        ({"outcomeTimestamp": "yesterday"}, "RFC 3339"),
        ({"outcomeTimestamp": None}, "outcomeTimestamp"),
        ({"card": 42}, "uuid"),
        ({"acceptedSuggestions": [{"nope": 1}], "outcome": "accepted"}, "acceptedSuggestions[0]"),
    ],
)
def test_fb_violations_are_400_with_operation_outcome(client, change, mentions):
    bad = item(str(uuid.uuid4()))
    bad.update(change)
    if change.get("outcome") == "accepted":
        bad.pop("overrideReason", None)
    r = client.post(FEEDBACK_URL, json={"feedback": [bad]})
    assert r.status_code == 400
    body = r.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    assert mentions in body["issue"][0]["diagnostics"]


def test_feedback_body_shape_and_unknown_service(client):
    assert client.post(FEEDBACK_URL, json={"feedback": []}).status_code == 400
    assert client.post(FEEDBACK_URL, json={"nothing": 1}).status_code == 400
    assert client.post("/cds-services/nope/feedback", json={"feedback": [item("x")]}).status_code == 404


def test_8_concurrent_batches_of_100_lose_and_duplicate_nothing(client, app):
    batches = [[item(f"card-{b}-{i}") for i in range(100)] for b in range(8)]

    def post(batch):
        return client.post(FEEDBACK_URL, json={"feedback": batch}).get_json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, batches))
        # Replaying every batch concurrently stores nothing new.
        replays = list(pool.map(post, batches))
    assert [r["stored"] for r in results] == [100] * 8
    assert [r["stored"] for r in replays] == [0] * 8
    assert app.extensions["cds_hooks"].store.count_feedback() == 800
