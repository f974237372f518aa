"""Restart during load: SIGKILL the whole gunicorn process group while writers post feedback.

Every item acknowledged with 200 before the kill must be in the database exactly once after the
restart. Batches whose request failed (the connection broke or was refused) may or may not have been
stored; retried after the restart, each is stored all-or-nothing and never twice.
"""

from __future__ import annotations

import threading
import time
import uuid

import requests

from tests.durability.conftest import Database
from tests.durability.service import FEEDBACK_PATH, batch_cards, feedback_body, feedback_counts, rows_per_card

WRITERS = 8
BATCH = 50
MAX_BATCHES_PER_WRITER = 250  # a bound, should the kill never come: 100,000 items at most
KILL_AFTER_ACKED = 100  # batches acknowledged with 200 before the kill (5,000 items)


class Ledger:
    """What the writers know: batches acknowledged with 200, and batches whose fate is unknown."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: list[list[str]] = []
        self.unknown: list[list[str]] = []
        self.errors: list[str] = []
        self.enough = threading.Event()

    def ack(self, cards: list[str]) -> None:
        with self.lock:
            self.acked.append(cards)
            if len(self.acked) >= KILL_AFTER_ACKED:
                self.enough.set()

    def fail(self, cards: list[str]) -> None:
        with self.lock:
            self.unknown.append(cards)


def _writer(base_url: str, prefix: str, writer: int, ledger: Ledger, stop: threading.Event) -> None:
    """Post batches back to back until the service dies (the first failure ends the writer)."""
    with requests.Session() as session:
        for b in range(MAX_BATCHES_PER_WRITER):
            if stop.is_set():
                return
            cards = batch_cards(prefix, writer, b, BATCH)
            try:
                response = session.post(base_url + FEEDBACK_PATH, json=feedback_body(cards), timeout=(5, 30))
            except requests.RequestException:
                ledger.fail(cards)
                return
            if response.status_code == 200:
                answer = response.json()
                if answer.get("stored") != BATCH:  # new items, so all must be new
                    with ledger.lock:
                        ledger.errors.append(f"writer {writer} batch {b}: {answer}")
                ledger.ack(cards)
            else:  # not acknowledged: its fate is unknown, like a broken connection's
                ledger.fail(cards)
                return


def test_items_acknowledged_before_a_sigkill_are_all_there_after_restart(
    database: Database, services
) -> None:
    service = services({**database.env}).start()
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    ledger = Ledger()
    stop = threading.Event()
    threads = [
        threading.Thread(target=_writer, args=(service.base_url, prefix, w, ledger, stop), daemon=True)
        for w in range(WRITERS)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        assert ledger.enough.wait(30), f"only {len(ledger.acked)} batches acknowledged in 30 s"
        service.kill()  # master and workers at once, with requests in flight
        killed_after = time.monotonic() - started
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    acked = [card for cards in ledger.acked for card in cards]
    unknown = [card for cards in ledger.unknown for card in cards]
    assert not ledger.errors, ledger.errors[:3]
    # Requests failed: the kill did land in the middle of the load.
    assert ledger.unknown, (len(ledger.unknown), len(ledger.acked))

    service.start()  # same database, same port
    stored = rows_per_card(database.url, prefix)
    missing = [card for card in acked if stored.get(card) != 1]
    assert not missing, f"{len(missing)} acknowledged items lost or doubled, e.g. {missing[:3]}"
    assert all(n == 1 for n in stored.values()), "an item is stored twice"
    assert set(stored) <= set(acked) | set(unknown), "rows for items nobody sent"
    landed_before_kill = sum(1 for cards in ledger.unknown if cards[0] in stored)

    # The client retries what failed, and (for good measure) what was acknowledged: nothing doubles.
    with requests.Session() as session:
        retried = []
        for cards in ledger.unknown + ledger.acked:
            response = session.post(service.base_url + FEEDBACK_PATH, json=feedback_body(cards), timeout=30)
            assert response.status_code == 200, response.text
            retried.append((cards, response.json()))
    for cards, answer in retried:
        # One request is one transaction: all of its items were stored before the kill, or none.
        assert answer["stored"] in (0, BATCH), answer
        assert answer["stored"] + answer["duplicates"] == BATCH
        assert answer["stored"] == (0 if cards[0] in stored else BATCH), (cards[0], answer)

    total = len(acked) + len(unknown)
    counts = feedback_counts(database.url, prefix)
    assert (counts.rows, counts.fingerprints, counts.cards) == (total, total, total), counts
    print(
        f"\n[{database.backend}] SIGKILL after {killed_after:.2f} s: {len(ledger.acked)} batches "
        f"acknowledged ({len(acked)} items) all present once; {len(ledger.unknown)} in flight, of which "
        f"{landed_before_kill} had been committed; after retries {total} items, each once"
    )
