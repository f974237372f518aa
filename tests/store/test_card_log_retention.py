"""CDS_HOOKS_CARD_LOG_RETENTION_DAYS: the card log (cards shown, by patient pseudonym) and the feedback
on it are deleted after the retention, never before a snooze resting on them ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.hooks.card_memory import IssuedCard
from cds_hooks.process.config import ConfigError
from cds_hooks.store.database import CardRow, Store, card_log_table, feedback_table
from cds_hooks.store.recorder import Recorder
from tests.conftest import make_settings
from tests.store.card_memory_rows import issued_card, snooze

NOW = datetime.now(UTC)
RULE = "animal-insulin-switch"


def _shown(store: Store, days_ago: float) -> IssuedCard:
    card = issued_card(RULE)
    store.write_card_rows(
        [CardRow("svc", "patient-view", "h", "patient-1", card, NOW - timedelta(days=days_ago))]
    )
    return card


def _snoozed(store: Store, card: IssuedCard, days_ago: float) -> None:
    assert store.record_feedback("svc", [snooze(card, NOW - timedelta(days=days_ago))]).stored == 1
    with store.engine.begin() as conn:  # received as long ago as it happened
        conn.execute(
            update(feedback_table)
            .where(feedback_table.c.card_uuid == card.uuid)
            .values(received_at=NOW - timedelta(days=days_ago))
        )


def _card_uuids(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(card_log_table.c.card_uuid)).scalars())


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh store on SQLite, or on PostgreSQL (skipped, with the reason, when it is not available)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_database")
    store = Store(url)
    yield store
    store.dispose()


def test_old_cards_and_feedback_go_a_card_with_kept_feedback_stays(store: Store):
    _shown(store, 400)  # never answered
    old_answered_long_ago = _shown(store, 400)
    _snoozed(store, old_answered_long_ago, 390)
    old_answered_recently = _shown(store, 400)  # e.g. a chart left open, answered much later
    _snoozed(store, old_answered_recently, 10)
    recent = _shown(store, 10)

    assert store.prune_card_log(0, NOW) == (0, 0)  # 0 keeps everything
    assert store.prune_card_log(365, NOW) == (2, 1)
    assert _card_uuids(store) == {old_answered_recently.uuid, recent.uuid}
    assert [s.rule_id for s in store.snoozes("patient-1", [RULE], NOW - timedelta(days=90))] == [RULE]


def test_the_writer_applies_the_retention(tmp_path: Path):
    settings = make_settings(tmp_path, card_log_retention_days=365)
    store = Store(settings.resolved_database_url)
    old = _shown(store, 400)
    recorder = Recorder(store, settings)
    try:
        recorder.remember("svc", "patient-view", "h", "patient-2", [issued_card(RULE)], NOW)
        recorder.flush()
    finally:
        recorder.close()
    uuids = _card_uuids(store)
    assert old.uuid not in uuids and len(uuids) == 1
    store.dispose()


def test_retention_must_outlast_the_longest_snooze(tmp_path: Path):
    with pytest.raises(ConfigError, match="must not be negative"):
        make_settings(tmp_path, card_log_retention_days=-1)
    with pytest.raises(ConfigError, match="longest snooze, 90 days"):
        create_app(make_settings(tmp_path, card_log_retention_days=90), knowledge=default_knowledge())
    app = create_app(make_settings(tmp_path, card_log_retention_days=91), knowledge=default_knowledge())
    app.extensions["cds_hooks"].store.dispose()
