"""Snooze (issue 14 item 12) and no repeat at signing (item 13), through the HTTP service on SQLite.

A card overridden with a snoozing reason stays away for that patient for the rule's snooze_days unless
its evidence changes; order-sign leaves out a card order-select showed for the same draft within the
hour, when feedback for it came back.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from cds_hooks.clinical.cards.render import OVERRIDE_SYSTEM
from cds_hooks.store.database import card_log_table
from tests.api.test_order_hooks import DOSAGE, PORK, SELECT_URL, SIGN_URL, draft, order_request
from tests.builders import SERVICE_URL, bundle, porcine_request, porcine_statement, topics

FEEDBACK_URL = SERVICE_URL + "/feedback"
SWITCH = "animal-insulin-switch"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _override(
    client, card: dict[str, Any], code: str, *, when: datetime | None = None, url: str = FEEDBACK_URL
):
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": _iso(when or datetime.now(UTC)),
        "overrideReason": {"reason": {"system": OVERRIDE_SYSTEM, "code": code}},
    }
    r = client.post(url, json={"feedback": [item]})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["stored"] == 1


def _accept(client, card: dict[str, Any], url: str) -> None:
    suggestion = card.get("suggestions", [{}])[0].get("uuid", "none")
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "outcomeTimestamp": _iso(datetime.now(UTC)),
        "acceptedSuggestions": [{"id": suggestion}],
    }
    assert client.post(url, json={"feedback": [item]}).status_code == 200


def _card(response_json: dict[str, Any], rule: str = SWITCH) -> dict[str, Any]:
    return next(c for c in response_json["cards"] if c["source"]["topic"]["code"] == rule)


def _call(client, body: dict[str, Any], url: str = SERVICE_URL) -> dict[str, Any]:
    r = client.post(url, json=body)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_the_cards_offer_the_snooze_reason(client):
    card = _card(_call(client, porcine_request("s0")))
    reasons = {r["code"]: r["display"] for r in card["overrideReasons"]}
    assert reasons["snooze"] == "Remind me in 90 days"
    assert {"already-addressed", "patient-declined"} <= reasons.keys()


def test_snooze_override_suppresses_until_new_evidence_appears(client):
    first = _card(_call(client, porcine_request("s1")))
    _override(client, first, "snooze")

    assert SWITCH not in topics(_call(client, porcine_request("s1"))), "snoozed card came back"

    # New evidence: a second animal-insulin statement the overridden card did not cite.
    body = porcine_request("s1")
    body["prefetch"]["medicationStatements"] = bundle(
        porcine_statement("s1"), porcine_statement("s1", rid="ms-pork-2")
    )
    assert SWITCH in topics(_call(client, body))


def test_each_snoozing_reason_snoozes_and_other_reasons_do_not(client):
    for n, code in enumerate(("already-addressed", "patient-declined", "snooze")):
        pid = f"reason-{n}"
        _override(client, _card(_call(client, porcine_request(pid))), code)
        assert SWITCH not in topics(_call(client, porcine_request(pid))), code
    for n, code in enumerate(("not-applicable", "data-incorrect")):
        pid = f"other-{n}"
        _override(client, _card(_call(client, porcine_request(pid))), code)
        assert SWITCH in topics(_call(client, porcine_request(pid))), code


def test_snooze_is_per_patient(client):
    _override(client, _card(_call(client, porcine_request("mine"))), "snooze")
    assert SWITCH in topics(_call(client, porcine_request("someone-else")))


def test_snooze_expires_after_the_rules_snooze_days(client, app):
    days = app.extensions["cds_hooks"].pipeline.snooze_days(SWITCH)
    assert days == 90
    now = datetime.now(UTC)
    _override(
        client,
        _card(_call(client, porcine_request("old"))),
        "snooze",
        when=now - timedelta(days=days, hours=1),
    )
    assert SWITCH in topics(_call(client, porcine_request("old"))), "an expired snooze still suppressed"
    _override(
        client, _card(_call(client, porcine_request("recent"))), "snooze", when=now - timedelta(days=days - 1)
    )
    assert SWITCH not in topics(_call(client, porcine_request("recent")))


def test_a_snooze_starts_no_later_than_the_feedback_arrived(client, app):
    """A clock in the future does not stretch the snooze: it starts when the override arrived."""
    card = _card(_call(client, porcine_request("future")))
    _override(client, card, "snooze", when=datetime.now(UTC) + timedelta(days=365))
    snoozes = app.extensions["cds_hooks"].store.snoozes(
        app.extensions["cds_hooks"].pipeline.pseudonyms.patient("future"),
        [SWITCH],
        datetime(2000, 1, 1, tzinfo=UTC),
    )
    assert len(snoozes) == 1
    assert snoozes[0].start <= datetime.now(UTC)


def test_the_card_log_keeps_a_keyed_pseudonym_never_the_patient_id(client, app):
    pid = "patient-id-7f3a"
    _call(client, porcine_request(pid))
    rt = app.extensions["cds_hooks"]
    rt.recorder.flush()
    with rt.store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(card_log_table.select())]
    assert rows
    text = json.dumps(rows, default=str)
    assert pid not in text
    pseudonym = rt.pipeline.pseudonyms.patient(pid)
    assert {r["patient_pseudonym"] for r in rows} == {pseudonym}
    assert len(pseudonym) == 64 and pseudonym != rt.pipeline.pseudonyms.patient(
        pid, "https://other.example/fhir"
    )
    assert all(json.loads(r["evidence"]) for r in rows)


# ------------------------------------------------------------------------------ signing (item 13)


def _pork_orders(pid: str, drafts: list[dict[str, Any]] | None = None) -> tuple[dict, dict]:
    drafts = drafts or [draft("d-pork", pid, PORK, dosageInstruction=DOSAGE)]
    select = order_request("order-select", pid, drafts, ["MedicationRequest/d-pork"])
    sign = order_request("order-sign", pid, copy.deepcopy(drafts))
    return select, sign


def test_order_sign_does_not_repeat_a_card_acknowledged_at_order_select(client):
    select, sign = _pork_orders("sign-1")
    card = _card(_call(client, select, SELECT_URL))
    _accept(client, card, SELECT_URL + "/feedback")
    assert SWITCH not in topics(_call(client, sign, SIGN_URL))


def test_order_sign_repeats_the_card_when_no_feedback_came_back(client):
    select, sign = _pork_orders("sign-2")
    _card(_call(client, select, SELECT_URL))
    assert SWITCH in topics(_call(client, sign, SIGN_URL))


def test_order_sign_shows_the_card_again_when_the_draft_changed(client):
    select, sign = _pork_orders("sign-3")
    _override(
        client, _card(_call(client, select, SELECT_URL)), "not-applicable", url=SELECT_URL + "/feedback"
    )
    sign["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["text"] = "20 units daily"
    assert SWITCH in topics(_call(client, sign, SIGN_URL))


def test_order_sign_shows_the_card_for_another_patient_or_after_an_hour(client, app):
    select, _ = _pork_orders("sign-4")
    _accept(client, _card(_call(client, select, SELECT_URL)), SELECT_URL + "/feedback")
    _, other_sign = _pork_orders("sign-5")
    assert SWITCH in topics(_call(client, other_sign, SIGN_URL))

    rt = app.extensions["cds_hooks"]
    rt.recorder.flush()
    with rt.store.engine.begin() as conn:
        conn.execute(
            update(card_log_table)
            .where(card_log_table.c.hook == "order-select")
            .values(created_at=datetime.now(UTC) - timedelta(minutes=61))
        )
    _, sign = _pork_orders("sign-4")
    assert SWITCH in topics(_call(client, sign, SIGN_URL))


def test_an_instance_with_another_pseudonym_key_on_the_same_database_says_so(tmp_path, caplog):
    import logging

    from cds_hooks.app import create_app
    from cds_hooks.clinical.knowledge import default_knowledge
    from tests.conftest import make_settings

    shared = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    apps = [
        create_app(
            make_settings(tmp_path / "a", database_url=shared, pseudonym_key="a" * 40),
            knowledge=default_knowledge(),
        )
    ]
    with caplog.at_level(logging.ERROR):
        apps.append(
            create_app(
                make_settings(tmp_path / "b", database_url=shared, pseudonym_key="a" * 40),
                knowledge=default_knowledge(),
            )
        )
        assert "pseudonym key differs" not in caplog.text
        apps.append(
            create_app(
                make_settings(tmp_path / "c", database_url=shared, pseudonym_key="c" * 40),
                knowledge=default_knowledge(),
            )
        )
    assert "pseudonym key differs" in caplog.text
    for app in apps:
        app.extensions["cds_hooks"].store.dispose()


def test_a_generated_pseudonym_key_is_kept_in_the_data_directory(tmp_path):
    from cds_hooks.process.pseudonym import KEY_FILE, load_key

    first = load_key("", tmp_path)
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert load_key("", tmp_path) == first and len(first) >= 32
    assert load_key("x" * 40, tmp_path) == b"x" * 40


def test_when_the_card_memory_fails_every_card_is_shown(client, app, monkeypatch):
    _override(client, _card(_call(client, porcine_request("fail-open"))), "snooze")

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(app.extensions["cds_hooks"].recorder, "snoozes", broken)
    assert SWITCH in topics(_call(client, porcine_request("fail-open")))


def test_the_snooze_label_says_the_rules_own_number_of_days(tmp_path):
    """ "Remind me in {snooze_days} days" in _common.toml takes each rule's snooze_days."""
    import dataclasses

    from cds_hooks.clinical.knowledge import load_knowledge
    from cds_hooks.hooks.dispatch import evaluate_offline

    knowledge = load_knowledge(env={})
    cards = dict(knowledge.wording.cards)
    cards[SWITCH] = dataclasses.replace(cards[SWITCH], snooze_days=30)
    knowledge = dataclasses.replace(knowledge, wording=dataclasses.replace(knowledge.wording, cards=cards))
    card = _card(evaluate_offline(porcine_request("s-days"), knowledge=knowledge))
    reasons = {r["code"]: r["display"] for r in card["overrideReasons"]}
    assert reasons["snooze"] == "Remind me in 30 days"
