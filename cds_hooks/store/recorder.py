"""The service's memory and records, as the HTTP layer uses them: the card log and the audit trail,
written off the request path by a ``BatchWriter``; snoozes and order-select cards read from the shared
database (the ``CardMemory`` the pipeline asks).

What a SIGKILL can lose is the writer's queue: at most ``FLUSH_INTERVAL`` seconds of card-log and audit
rows. Feedback is never queued (``Store.record_feedback`` runs in the request and commits before the
answer); before it is stored the queue is flushed, so feedback finds the cards this worker showed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from cds_hooks.hooks.card_memory import IssuedCard, Snooze
from cds_hooks.process.config import Settings
from cds_hooks.store.audit import AuditRecord, JsonLinesSink, audit_event
from cds_hooks.store.database import CardRow, Store
from cds_hooks.store.writer import BatchWriter

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1  # seconds a write waits for more rows to batch with
PRUNE_INTERVAL = 3600.0  # seconds between retention passes (per worker; the first one at the first write)


class Recorder:
    def __init__(self, store: Store, settings: Settings, *, interval: float = FLUSH_INTERVAL):
        self.store = store
        self.audit_mode = settings.audit
        self.retention_days = settings.audit_retention_days
        self.card_log_retention_days = settings.card_log_retention_days
        self._sink: JsonLinesSink | None = None
        if self.audit_mode == "stdout":
            self._sink = JsonLinesSink(None)
        elif self.audit_mode.startswith("file:"):
            self._sink = JsonLinesSink(Path(self.audit_mode[5:].strip()).expanduser())
        self._last_prune: float | None = None
        self._prune_lock = threading.Lock()
        self.writer = BatchWriter({"cards": self._write_cards, "audit": self._write_audit}, interval=interval)

    # ------------------------------------------------------------------ CardMemory

    def snoozes(self, patient: str, rule_ids: Iterable[str], since: datetime) -> list[Snooze]:
        return self.store.snoozes(patient, rule_ids, since)

    def acknowledged_select_cards(
        self, patient: str, rule_ids: Iterable[str], since: datetime
    ) -> list[IssuedCard]:
        return self.store.acknowledged_select_cards(patient, rule_ids, since)

    def remember(
        self,
        service_id: str,
        hook: str,
        hook_instance: str,
        patient: str,
        cards: list[IssuedCard],
        now: datetime,
    ) -> None:
        rows = [CardRow(service_id, hook, hook_instance, patient, card, now) for card in cards]
        self.writer.put("cards", rows)

    # ------------------------------------------------------------------ the audit trail

    def audit(self, record: AuditRecord) -> None:
        """Queue one call's audit record (turned into an AuditEvent by the writer thread)."""
        if self.audit_mode != "off":
            self.writer.put("audit", record)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def _write_cards(self, batches: list[list[CardRow]]) -> None:
        self.store.write_card_rows([row for rows in batches for row in rows])
        self._prune_now_and_then()

    def _write_audit(self, records: list[AuditRecord]) -> None:
        events = [audit_event(r) for r in records]
        if self._sink is not None:
            self._sink.write(events)
            return
        self.store.write_audit_events(events)
        self._prune_now_and_then()

    def _prune_now_and_then(self) -> None:
        """Apply the retention settings, at most once per ``PRUNE_INTERVAL`` (on the writer thread)."""
        audit_days = self.retention_days if self.audit_mode == "db" else 0  # a file or stdout is not pruned
        if not (audit_days or self.card_log_retention_days):
            return
        now = time.monotonic()
        if self._last_prune is not None and now - self._last_prune < PRUNE_INTERVAL:
            return
        with self._prune_lock:
            if self._last_prune is not None and now - self._last_prune < PRUNE_INTERVAL:
                return
            self._last_prune = now
            when = datetime.now(UTC)
            removed = self.store.prune_audit(audit_days, when)
            if removed:
                log.info("audit retention: %d event(s) older than %d days deleted", removed, audit_days)
            cards, feedback = self.store.prune_card_log(self.card_log_retention_days, when)
            if cards or feedback:
                log.info(
                    "card-log retention: %d card(s) and %d feedback row(s) older than %d days deleted",
                    cards,
                    feedback,
                    self.card_log_retention_days,
                )
