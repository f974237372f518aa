"""Snooze and no repeat at signing across two instances (issue 14 items 12–13): two `cds-hooks serve`
process groups sharing one database (a SQLite file, or PostgreSQL) and one pseudonym key. The card is
shown by one instance, the feedback goes to the other, and the next call, on either, honours it."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, func, select

from cds_hooks.clinical.cards.render import OVERRIDE_SYSTEM
from cds_hooks.store.database import card_log_table
from tests.api.test_order_hooks import DOSAGE, PORK, SELECT_URL, SIGN_URL, draft, order_request
from tests.builders import SERVICE_URL, bundle, porcine_request, porcine_statement, topics
from tests.durability.conftest import Database, ServiceFactory
from tests.durability.service import ServiceProcess

KEY = "0123456789abcdef" * 4
SWITCH = "animal-insulin-switch"


def _pair(
    database: Database, services: ServiceFactory, tmp_path: Path
) -> tuple[ServiceProcess, ServiceProcess]:
    env = {"CDS_HOOKS_DATABASE_URL": database.url, "CDS_HOOKS_PSEUDONYM_KEY": KEY}
    a = services({**env, "CDS_HOOKS_DATA_DIR": str(tmp_path / "a")}, name="a", threads=2).launch()
    b = services({**env, "CDS_HOOKS_DATA_DIR": str(tmp_path / "b")}, name="b", threads=2).launch()
    return a.wait_ready(), b.wait_ready()


def _post(instance: ServiceProcess, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = requests.post(instance.base_url + path, json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _card(response: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in response["cards"] if c["source"]["topic"]["code"] == SWITCH)


def _wait_logged(database: Database, card_uuid: str) -> None:
    """The showing instance writes its card log off the request path (within a fraction of a second)."""
    engine = create_engine(database.url)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                query = (
                    select(func.count())
                    .select_from(card_log_table)
                    .where(card_log_table.c.card_uuid == card_uuid)
                )
                if conn.execute(query).scalar_one():
                    return
            time.sleep(0.05)
        raise AssertionError(f"card {card_uuid} never reached the card log")
    finally:
        engine.dispose()


def _feedback(instance: ServiceProcess, path: str, card: dict[str, Any], outcome: str) -> None:
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": outcome,
        "outcomeTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if outcome == "overridden":
        item["overrideReason"] = {"reason": {"system": OVERRIDE_SYSTEM, "code": "snooze"}}
    else:
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    r = requests.post(instance.base_url + path + "/feedback", json={"feedback": [item]}, timeout=30)
    assert r.status_code == 200, r.text
    assert "unknownCards" not in r.json()


def test_snooze_and_signing_hold_across_two_instances(
    database: Database, services: ServiceFactory, tmp_path: Path
):
    a, b = _pair(database, services, tmp_path)

    # Snooze: shown by A, overridden through B, suppressed on B and A, back with new evidence.
    card = _card(_post(a, SERVICE_URL, porcine_request("x1")))
    _wait_logged(database, card["uuid"])
    _feedback(b, SERVICE_URL, card, "overridden")
    assert SWITCH not in topics(_post(b, SERVICE_URL, porcine_request("x1")))
    assert SWITCH not in topics(_post(a, SERVICE_URL, porcine_request("x1")))
    changed = porcine_request("x1")
    changed["prefetch"]["medicationStatements"] = bundle(
        porcine_statement("x1"), porcine_statement("x1", "ms-new")
    )
    assert SWITCH in topics(_post(b, SERVICE_URL, changed))

    # No repeat at signing: order-select on A, feedback to B, order-sign on B.
    drafts = [draft("d-pork", "x2", PORK, dosageInstruction=DOSAGE)]
    select_card = _card(
        _post(a, SELECT_URL, order_request("order-select", "x2", drafts, ["MedicationRequest/d-pork"]))
    )
    _wait_logged(database, select_card["uuid"])
    _feedback(b, SELECT_URL, select_card, "accepted")
    assert SWITCH not in topics(_post(b, SIGN_URL, order_request("order-sign", "x2", copy.deepcopy(drafts))))
    # Without feedback, the signing card shows.
    other = [draft("d-pork", "x3", PORK, dosageInstruction=DOSAGE)]
    _post(a, SELECT_URL, order_request("order-select", "x3", other, ["MedicationRequest/d-pork"]))
    assert SWITCH in topics(_post(b, SIGN_URL, order_request("order-sign", "x3", copy.deepcopy(other))))
