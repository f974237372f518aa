"""The card memory's look-ups on the request path read a bounded slice of the database, whatever the
patient's history: the benchmark's soak (one patient, 29,000 requests) showed the old snooze look-up
scanning every card the patient was ever shown (32 ms per request at 60,000 rows), and throughput
falling from 129 to 23 requests/s. Also: feedback stored before the pseudonym column existed is found
again after the upgrade."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from cds_hooks.store.database import CardRow, Store
from tests.store.card_memory_rows import issued_card, snooze

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _plan(store: Store, look_up) -> str:
    """SQLite's query plan of the statement ``look_up`` runs (captured as sent to the driver)."""
    sent = []
    listen = lambda conn, cursor, sql, params, context, many: sent.append((sql, params))  # noqa: E731
    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        look_up()
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    (sql, params), *_ = [s for s in sent if s[0].lstrip().upper().startswith("SELECT")]
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
    return " | ".join(str(row[-1]) for row in rows)


def test_snooze_look_up_starts_from_the_patients_feedback(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    plan = _plan(store, lambda: store.snoozes("p", ["animal-insulin-switch"], NOW))
    assert "ix_feedback_patient_time" in plan, plan
    assert "SCAN card_log" not in plan and "SCAN feedback" not in plan, plan


def test_signing_look_up_reads_only_recent_order_select_cards(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    plan = _plan(store, lambda: store.acknowledged_select_cards("p", ["animal-insulin-switch"], NOW))
    assert "ix_card_log_patient_hook_created" in plan, plan
    assert "SCAN card_log" not in plan, plan


def test_feedback_from_before_the_upgrade_still_snoozes(tmp_path):
    """A database whose feedback table has no patient column: the upgrade adds it and fills it in."""
    path = tmp_path / "db.sqlite3"
    store = Store(f"sqlite:///{path}")
    card = issued_card()
    store.write_card_rows([CardRow("svc", "patient-view", "h", "patient-1", card, NOW - timedelta(days=2))])
    item = snooze(card, NOW - timedelta(days=1))
    assert store.record_feedback("svc", [item]).stored == 1
    store.dispose()
    with sqlite3.connect(path) as conn:  # as a database made by the previous release
        conn.execute("DROP INDEX ix_feedback_patient_time")
        conn.execute("ALTER TABLE feedback DROP COLUMN patient_pseudonym")

    upgraded = Store(f"sqlite:///{path}")
    snoozes = upgraded.snoozes("patient-1", ["animal-insulin-switch"], NOW - timedelta(days=90))
    assert [s.rule_id for s in snoozes] == ["animal-insulin-switch"]
    assert upgraded.snoozes("patient-2", ["animal-insulin-switch"], NOW - timedelta(days=90)) == []


def test_feedback_that_overtakes_its_card_still_snoozes(tmp_path):
    """Another worker's writer can still hold the card's row (up to its flush interval) when the override
    arrives: the feedback is stored without a patient, and gets it when the card row is written."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    card, other = issued_card(), issued_card("insulin-antibody-workup")
    item = snooze(card, NOW - timedelta(hours=1))
    early = store.record_feedback("svc", [item])
    assert early.stored == 1 and early.unknown_cards == [card.uuid]
    assert store.snoozes("patient-1", ["animal-insulin-switch"], NOW - timedelta(days=90)) == []

    created = NOW - timedelta(hours=1, seconds=1)
    store.write_card_rows(
        [
            CardRow("svc", "patient-view", "h", "patient-1", card, created),
            CardRow("svc", "patient-view", "h", "patient-2", other, created),
        ]
    )
    snoozes = store.snoozes("patient-1", ["animal-insulin-switch"], NOW - timedelta(days=90))
    assert [s.rule_id for s in snoozes] == ["animal-insulin-switch"]
    assert store.snoozes("patient-2", ["animal-insulin-switch", "insulin-antibody-workup"], NOW) == []
    again = store.record_feedback("svc", [item])  # the same feedback again: a duplicate of a known card
    assert again.stored == 0 and again.unknown_cards == []
