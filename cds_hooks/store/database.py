"""Persistence through SQLAlchemy: feedback and the log of cards returned.

SQLite (an embedded file, no server) by default; any SQLAlchemy URL, e.g. PostgreSQL, by
``CDS_HOOKS_DATABASE_URL``. Feedback is idempotent: each item has a fingerprint with a unique
constraint, inserted with ON CONFLICT DO NOTHING, so a retried POST stores nothing twice and
concurrent writers never lose or duplicate an item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from cds_hooks.hooks.protocol import FeedbackItem

metadata = MetaData()

feedback_table = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("service_id", String(128), nullable=False, index=True),
    Column("card_uuid", String(128), nullable=False, index=True),
    Column("known_card", Boolean, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("outcome_timestamp", DateTime(timezone=True), nullable=False),
    Column("accepted_suggestions", Text, nullable=False),  # JSON array of suggestion uuids
    Column("override_code", String(256)),
    Column("override_system", String(512)),
    Column("override_display", Text),
    Column("override_comment", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# Every card returned: lets feedback be checked against real card uuids and (later) analysed.
# No patient identifiers are stored.
card_log_table = Table(
    "card_log",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(128), nullable=False, index=True),
    Column("rule_id", String(128), nullable=False),
    Column("hook_instance", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class FeedbackResult:
    stored: int
    duplicates: int
    unknown_cards: list[str]


def _fingerprint(service_id: str, item: FeedbackItem) -> str:
    """Identity of a feedback item: the same card, outcome, time and choices is the same feedback."""
    canonical = json.dumps(
        [
            service_id,
            item.card,
            item.outcome,
            item.outcome_timestamp.isoformat(),
            sorted(item.accepted_suggestions),
            item.override_reason_code,
            item.override_reason_system,
            item.override_comment,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _insert_ignore(engine: Engine, table: Table):  # type: ignore[no-untyped-def]
    """INSERT … ON CONFLICT DO NOTHING in the engine's dialect (SQLite and PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


class Store:
    """The service's database. One instance per process; SQLAlchemy pools connections."""

    def __init__(self, url: str):
        parsed = make_url(url)
        kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.engine = create_engine(url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create_tables()

    def _create_tables(self) -> None:
        """Create missing tables. Several workers may start at once: if another one won the race,
        the second attempt finds the tables and does nothing."""
        try:
            metadata.create_all(self.engine)
        except DBAPIError:
            metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def record_cards(
        self,
        service_id: str,
        hook_instance: str,
        cards: Iterable[dict[str, Any]],
        now: datetime | None = None,
    ) -> None:
        """Log every card issued (uuid, rule id, service, hookInstance, time; no patient data)."""
        now = now or datetime.now(UTC)
        rows = [
            {
                "card_uuid": c["uuid"],
                "service_id": service_id,
                "rule_id": c.get("source", {}).get("topic", {}).get("code", ""),
                "hook_instance": hook_instance[:128],
                "created_at": now,
            }
            for c in cards
            if c.get("uuid")
        ]
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(_insert_ignore(self.engine, card_log_table), rows)

    def record_feedback(self, service_id: str, items: list[FeedbackItem]) -> FeedbackResult:
        """Store every item once; report how many were new and which card uuids we never issued."""
        now = datetime.now(UTC)
        card_ids = sorted({i.card for i in items if i.card})
        with self.engine.begin() as conn:
            known = set()
            if card_ids:
                known = set(
                    conn.execute(
                        select(card_log_table.c.card_uuid).where(card_log_table.c.card_uuid.in_(card_ids))
                    ).scalars()
                )
            rows = []
            seen: set[str] = set()
            for item in items:
                fp = _fingerprint(service_id, item)
                if fp in seen:
                    continue
                seen.add(fp)
                rows.append(
                    {
                        "fingerprint": fp,
                        "service_id": service_id,
                        "card_uuid": item.card,
                        "known_card": item.card in known,
                        "outcome": item.outcome,
                        "outcome_timestamp": item.outcome_timestamp,
                        "accepted_suggestions": json.dumps(list(item.accepted_suggestions)),
                        "override_code": item.override_reason_code,
                        "override_system": item.override_reason_system,
                        "override_display": item.override_reason_display,
                        "override_comment": item.override_comment,
                        "received_at": now,
                    }
                )
            # One lock order for every request: concurrent batches sharing items never deadlock (PostgreSQL).
            rows.sort(key=lambda row: row["fingerprint"])
            stored = 0
            if rows:
                # RETURNING counts exactly the rows this call inserted, on SQLite and PostgreSQL alike.
                statement = _insert_ignore(self.engine, feedback_table).returning(feedback_table.c.id)
                stored = len(conn.execute(statement, rows).all())
        unknown = [c for c in card_ids if c not in known]
        return FeedbackResult(stored=stored, duplicates=len(items) - stored, unknown_cards=unknown)

    def count_feedback(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(feedback_table)).scalar_one())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; busy_timeout makes writers queue instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
