"""Persistence through SQLAlchemy: feedback, the log of cards returned, the audit trail and the SMART app's
sessions.

SQLite (an embedded file, no server) by default; any SQLAlchemy URL, e.g. PostgreSQL, by
``CDS_HOOKS_DATABASE_URL``. Feedback is idempotent: each item has a fingerprint with a unique
constraint, inserted with ON CONFLICT DO NOTHING, so a retried POST stores nothing twice and
concurrent writers never lose or duplicate an item.

The card log keeps, per card, the keyed patient pseudonym and fingerprints of its evidence and draft
orders (never a patient id or record text): enough to recognise the card again for a snooze or at
order-sign, across every instance that shares the database (``CardMemory`` below).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from cds_hooks.hooks.card_memory import SNOOZE_REASONS, IssuedCard, Snooze
from cds_hooks.hooks.protocol import FeedbackItem

log = logging.getLogger(__name__)

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
    # The pseudonym of the card's patient, copied from the card log when the feedback arrives, so that a
    # snooze look-up reads this patient's few overrides instead of every card they were ever shown.
    Column("patient_pseudonym", String(64)),
    Index("ix_feedback_patient_time", "patient_pseudonym", "outcome_timestamp"),
)

# Every card returned: lets feedback be checked against real card uuids, analysed, and recognised again
# (snooze, no repeat at signing). No patient identifiers: the keyed pseudonym and fingerprints only.
card_log_table = Table(
    "card_log",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(128), nullable=False, index=True),
    Column("rule_id", String(128), nullable=False),
    Column("hook_instance", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Added for snooze and signing; databases made before get them by ALTER TABLE (all nullable).
    Column("hook", String(32)),
    Column("indicator", String(16)),
    Column("patient_pseudonym", String(64)),
    Column("evidence", Text),  # JSON array of evidence fingerprints
    Column("drafts", Text),  # JSON array of "MedicationRequest/<id>#<content hash>"
    Index("ix_card_log_patient_rule", "patient_pseudonym", "rule_id"),
    # The signing look-up reads the patient's order-select cards of the last hour, whatever their history.
    Index("ix_card_log_patient_hook_created", "patient_pseudonym", "hook", "created_at"),
    # Retention (CDS_HOOKS_CARD_LOG_RETENTION_DAYS) deletes by age.
    Index("ix_card_log_created", "created_at"),
)

# The audit trail (CDS_HOOKS_AUDIT=db): one FHIR AuditEvent per service and feedback call.
audit_table = Table(
    "audit_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recorded", DateTime(timezone=True), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("service_id", String(128), nullable=False),
    Column("status", Integer, nullable=False),
    Column("event", Text, nullable=False),  # the AuditEvent as JSON
)

# Small facts the instances sharing a database agree on, e.g. the check value of the pseudonym key.
service_state_table = Table(
    "service_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The SMART app's and the dashboard's server-side sessions, shared by every worker and instance: the key is
# a hash of the browser's cookie value (the table never names a live cookie), the data is JSON (the EHR's
# access token, the PKCE verifier and launch state), and each row expires on its own.
app_session_table = Table(
    "app_session",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

_UPGRADED_TABLES = (card_log_table, feedback_table)

# The two look-ups on the request path, built once: a prepared statement skips SQLAlchemy's per-call
# statement construction and cache-key work (~0.2 ms instead of ~0.8 ms a call on SQLite). Both use
# the (patient_pseudonym, rule_id) index; rules are filtered in Python from the patient's few rows.
_SNOOZES = (
    select(
        card_log_table.c.rule_id,
        card_log_table.c.evidence,
        feedback_table.c.outcome_timestamp,
        feedback_table.c.received_at,
    )
    .join(feedback_table, feedback_table.c.card_uuid == card_log_table.c.card_uuid)
    .where(
        feedback_table.c.patient_pseudonym == bindparam("patient"),
        card_log_table.c.patient_pseudonym == bindparam("patient"),
        feedback_table.c.outcome == "overridden",
        feedback_table.c.override_code.in_(sorted(SNOOZE_REASONS)),
        feedback_table.c.outcome_timestamp >= bindparam("since"),
    )
)
_SELECT_CARDS = select(
    card_log_table.c.card_uuid,
    card_log_table.c.rule_id,
    card_log_table.c.indicator,
    card_log_table.c.evidence,
    card_log_table.c.drafts,
).where(
    card_log_table.c.patient_pseudonym == bindparam("patient"),
    card_log_table.c.hook == "order-select",
    card_log_table.c.created_at >= bindparam("since"),
    select(feedback_table.c.id).where(feedback_table.c.card_uuid == card_log_table.c.card_uuid).exists(),
)


# Feedback whose card was not in the card log when it arrived: its patient and "known" from the card
# log (all such rows at an upgrade; the cards just written, after each card-log write).
_ADOPT_FEEDBACK = (
    update(feedback_table)
    .values(
        patient_pseudonym=select(card_log_table.c.patient_pseudonym)
        .where(card_log_table.c.card_uuid == feedback_table.c.card_uuid)
        .scalar_subquery(),
        known_card=True,
    )
    .where(
        feedback_table.c.patient_pseudonym.is_(None),
        select(card_log_table.c.card_uuid)
        .where(card_log_table.c.card_uuid == feedback_table.c.card_uuid)
        .exists(),
    )
)


@dataclass(frozen=True)
class FeedbackResult:
    stored: int
    duplicates: int
    unknown_cards: list[str]
    # Of the known cards fed back: their patient pseudonyms and rule ids (for the audit trail).
    patients: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CardRow:
    """One card for the card log (written in batches by the store's writer thread)."""

    service_id: str
    hook: str
    hook_instance: str
    patient: str | None
    card: IssuedCard
    created_at: datetime


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


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _json_set(value: str | None) -> frozenset[str]:
    return frozenset(json.loads(value)) if value else frozenset()


class Store:
    """The service's database. One instance per process; SQLAlchemy pools connections."""

    def __init__(self, url: str):
        parsed = make_url(url)
        # A pooled connection to a database server can go stale (a restart, an idle timeout): ping it on
        # checkout. A SQLite file cannot, and the ping is a query on every request.
        sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": not sqlite}
        if sqlite:
            database = parsed.database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        self.engine = create_engine(url, **kwargs)
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._insert_card_rows = _insert_ignore(self.engine, card_log_table)
        self._insert_audit_rows = audit_table.insert()
        self._create_tables()
        self._add_missing_columns()

    def _create_tables(self) -> None:
        """Create missing tables, one by one. Several workers may start at once: a worker that loses the
        race for a table finds it there and goes on to the next."""
        for table in metadata.sorted_tables:
            try:
                table.create(self.engine, checkfirst=True)
            except DBAPIError:
                if not inspect(self.engine).has_table(table.name):
                    raise

    def _add_missing_columns(self) -> None:
        """Columns added since a database was created (all nullable) by ALTER TABLE, then their indexes.
        Workers starting together may race: the loser finds the column there and carries on."""
        for table in _UPGRADED_TABLES:
            missing = [c for c in table.columns if c.name not in self._columns(table)]
            for column in missing:
                kind = column.type.compile(dialect=self.engine.dialect)
                try:
                    with self.engine.begin() as conn:
                        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
                except DBAPIError:
                    if column.name not in self._columns(table):
                        raise
            for index in table.indexes:  # new indexes on old columns too
                with contextlib.suppress(DBAPIError):
                    index.create(self.engine, checkfirst=True)
            if table is feedback_table and any(c.name == "patient_pseudonym" for c in missing):
                self._backfill_feedback_patients()

    def _backfill_feedback_patients(self) -> None:
        """Feedback stored before it carried the patient's pseudonym gets it from the card log, once."""
        with self.engine.begin() as conn:
            conn.execute(_ADOPT_FEEDBACK)

    def _columns(self, table: Table) -> set[str]:
        return {c["name"] for c in inspect(self.engine).get_columns(table.name)}

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ the card log

    def record_cards(
        self,
        service_id: str,
        hook_instance: str,
        cards: Iterable[dict[str, Any]],
        now: datetime | None = None,
    ) -> None:
        """Log cards issued by their wire form only (uuid, rule id; no patient, no fingerprints)."""
        now = now or datetime.now(UTC)
        self.write_card_rows(
            [
                CardRow(
                    service_id=service_id,
                    hook="",
                    hook_instance=hook_instance,
                    patient=None,
                    card=IssuedCard(
                        uuid=c["uuid"],
                        rule_id=c.get("source", {}).get("topic", {}).get("code", ""),
                        indicator=c.get("indicator", ""),
                        evidence=frozenset(),
                    ),
                    created_at=now,
                )
                for c in cards
                if c.get("uuid")
            ]
        )

    def write_card_rows(self, rows: list[CardRow]) -> None:
        """Insert card-log rows (one transaction; a uuid already logged is left as it is)."""
        values = [
            {
                "card_uuid": r.card.uuid,
                "service_id": r.service_id,
                "rule_id": r.card.rule_id,
                "hook_instance": r.hook_instance[:128],
                "created_at": r.created_at,
                "hook": r.hook or None,
                "indicator": r.card.indicator or None,
                "patient_pseudonym": r.patient,
                "evidence": json.dumps(sorted(r.card.evidence)),
                "drafts": json.dumps(sorted(r.card.drafts)),
            }
            for r in rows
        ]
        if values:
            with self.engine.begin() as conn:
                conn.execute(self._insert_card_rows, values)
                # Feedback can overtake its card: another worker's writer may still hold the card's row
                # (up to FLUSH_INTERVAL) when the clinician's override arrives. It was stored without a
                # patient; it gets one now, or its snooze would never be found.
                conn.execute(
                    _ADOPT_FEEDBACK.where(feedback_table.c.card_uuid.in_([v["card_uuid"] for v in values]))
                )

    def snoozes(self, patient: str, rule_ids: Iterable[str], since: datetime) -> list[Snooze]:
        """Overrides with a snoozing reason, at or after ``since``, of this patient's cards of these rules.
        A snooze starts at the override's ``outcomeTimestamp``, but never later than its arrival."""
        rules = set(rule_ids)
        if not rules:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(_SNOOZES, {"patient": patient, "since": since}).all()
        return [
            Snooze(
                rule_id=row.rule_id,
                evidence=_json_set(row.evidence),
                start=min(aware(row.outcome_timestamp), aware(row.received_at)),
            )
            for row in rows
            if row.rule_id in rules
        ]

    def acknowledged_select_cards(
        self, patient: str, rule_ids: Iterable[str], since: datetime
    ) -> list[IssuedCard]:
        """This patient's order-select cards of these rules since ``since`` that received feedback."""
        rules = set(rule_ids)
        if not rules:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(_SELECT_CARDS, {"patient": patient, "since": since}).all()
        return [
            IssuedCard(
                uuid=row.card_uuid,
                rule_id=row.rule_id,
                indicator=row.indicator or "",
                evidence=_json_set(row.evidence),
                drafts=_json_set(row.drafts),
            )
            for row in rows
            if row.rule_id in rules
        ]

    # ------------------------------------------------------------------ feedback

    def record_feedback(self, service_id: str, items: list[FeedbackItem]) -> FeedbackResult:
        """Store every item once; report how many were new and which card uuids we never issued."""
        now = datetime.now(UTC)
        card_ids = sorted({i.card for i in items if i.card})
        with self.engine.begin() as conn:
            known: dict[str, Any] = {}
            if card_ids:
                known = {
                    row.card_uuid: row
                    for row in conn.execute(
                        select(
                            card_log_table.c.card_uuid,
                            card_log_table.c.rule_id,
                            card_log_table.c.patient_pseudonym,
                        ).where(card_log_table.c.card_uuid.in_(card_ids))
                    )
                }
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
                        "patient_pseudonym": getattr(known.get(item.card), "patient_pseudonym", None),
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
        return FeedbackResult(
            stored=stored,
            duplicates=len(items) - stored,
            unknown_cards=unknown,
            patients=sorted({r.patient_pseudonym for r in known.values() if r.patient_pseudonym}),
            rules=sorted({r.rule_id for r in known.values()}),
        )

    def count_feedback(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(feedback_table)).scalar_one())

    # ------------------------------------------------------------------ the audit trail

    def write_audit_events(self, events: list[dict[str, Any]]) -> None:
        rows = [
            {
                "recorded": datetime.fromisoformat(e["recorded"].replace("Z", "+00:00")),
                "kind": e["subtype"][0]["code"],
                "service_id": e["agent"][1]["who"]["identifier"]["value"],
                "status": int(e["outcomeDesc"].removeprefix("HTTP ")),
                "event": json.dumps(e, separators=(",", ":")),
            }
            for e in events
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self._insert_audit_rows, rows)

    def prune_audit(self, retention_days: int, now: datetime | None = None) -> int:
        """Delete audit rows older than the retention; returns how many went."""
        if retention_days <= 0:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        with self.engine.begin() as conn:
            return int(conn.execute(delete(audit_table).where(audit_table.c.recorded < cutoff)).rowcount or 0)

    def prune_card_log(self, retention_days: int, now: datetime | None = None) -> tuple[int, int]:
        """Delete feedback received, and cards shown, before the retention; a card whose feedback is kept
        stays with it (a snooze joins the two). Returns (cards, feedback) deleted."""
        if retention_days <= 0:
            return 0, 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        has_feedback = (
            select(feedback_table.c.id)
            .where(feedback_table.c.card_uuid == card_log_table.c.card_uuid)
            .exists()
        )
        with self.engine.begin() as conn:
            feedback = conn.execute(
                delete(feedback_table).where(feedback_table.c.received_at < cutoff)
            ).rowcount
            cards = conn.execute(
                delete(card_log_table).where(card_log_table.c.created_at < cutoff, ~has_feedback)
            ).rowcount
        return int(cards or 0), int(feedback or 0)

    def audit_events(self, since: datetime | None = None, batch: int = 1000) -> Iterator[str]:
        """The stored AuditEvents (JSON text) recorded at or after ``since``, oldest first."""
        last_id = 0
        while True:
            query = select(audit_table.c.id, audit_table.c.event).where(audit_table.c.id > last_id)
            if since is not None:
                query = query.where(audit_table.c.recorded >= since)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(audit_table.c.id).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield row.event
            last_id = rows[-1].id

    # ------------------------------------------------------------------ app sessions

    def put_app_session(self, key: str, data: dict[str, Any], expires_at: datetime) -> None:
        """Store a new session (its key is new and random; expired sessions are deleted on the way)."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(delete(app_session_table).where(app_session_table.c.expires_at < now))
            conn.execute(
                app_session_table.insert().values(key=key, data=json.dumps(data), expires_at=expires_at)
            )

    def app_session(self, key: str, now: datetime | None = None) -> dict[str, Any] | None:
        """The session's data, or ``None`` when there is none or it has expired."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(app_session_table.c.data, app_session_table.c.expires_at).where(
                    app_session_table.c.key == key
                )
            ).first()
        if row is None or aware(row.expires_at) <= (now or datetime.now(UTC)):
            return None
        data = json.loads(row.data)
        return data if isinstance(data, dict) else None

    def delete_app_session(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(app_session_table).where(app_session_table.c.key == key))

    # ------------------------------------------------------------------ shared state

    def check_shared_value(self, name: str, value: str) -> str:
        """Record ``value`` under ``name`` unless another instance did first; returns the stored value."""
        with self.engine.begin() as conn:
            conn.execute(_insert_ignore(self.engine, service_state_table), [{"name": name, "value": value}])
            return str(
                conn.execute(
                    select(service_state_table.c.value).where(service_state_table.c.name == name)
                ).scalar_one()
            )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; busy_timeout makes writers queue instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
