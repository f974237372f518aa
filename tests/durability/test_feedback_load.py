"""Nothing lost, nothing doubled: 8 writers × 1,000 feedback items against the gunicorn-served service.

Each writer posts its items in batches of 50 (unique card ids), then every batch is posted once more
(a client retrying after a lost answer). Every item must be stored exactly once: checked in the
answers (``stored`` / ``duplicates``) and by counting rows directly in the database. Runs on the
default SQLite file and on PostgreSQL (skipped, with the reason, when none is available).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.durability.conftest import Database
from tests.durability.service import FEEDBACK_PATH, batch_cards, feedback_body, feedback_counts

WRITERS = 8
ITEMS_PER_WRITER = 1000
BATCH = 50
BATCHES_PER_WRITER = ITEMS_PER_WRITER // BATCH


def _post_all(base_url: str, prefix: str, writer: int) -> list[dict]:
    """One writer: all its batches, in order, on one keep-alive session; the answers."""
    answers = []
    with requests.Session() as session:
        for b in range(BATCHES_PER_WRITER):
            response = session.post(
                base_url + FEEDBACK_PATH,
                json=feedback_body(batch_cards(prefix, writer, b, BATCH)),
                timeout=(5, 60),
            )
            assert response.status_code == 200, (
                f"writer {writer} batch {b}: {response.status_code} {response.text}"
            )
            answers.append(response.json())
    return answers


def _run_writers(base_url: str, prefix: str) -> tuple[list[dict], float]:
    started = time.monotonic()
    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(lambda w: _post_all(base_url, prefix, w), range(WRITERS)))
    return [answer for answers in results for answer in answers], time.monotonic() - started


def test_every_feedback_item_is_stored_exactly_once_under_load(database: Database, services) -> None:
    service = services({**database.env}).start()
    prefix = f"load-{uuid.uuid4().hex[:8]}"
    total = WRITERS * ITEMS_PER_WRITER

    first, first_seconds = _run_writers(service.base_url, prefix)
    assert len(first) == WRITERS * BATCHES_PER_WRITER
    assert all(a["received"] == BATCH for a in first)
    assert sum(a["stored"] for a in first) == total, "an item was not stored"
    assert sum(a["duplicates"] for a in first) == 0

    # Every batch again: a client retrying each request once. Nothing new may be stored.
    again, again_seconds = _run_writers(service.base_url, prefix)
    assert sum(a["stored"] for a in again) == 0, "a retried item was stored a second time"
    assert sum(a["duplicates"] for a in again) == total

    counts = feedback_counts(database.url, prefix)
    assert (counts.rows, counts.fingerprints, counts.cards) == (total, total, total), counts
    assert service.process is not None and service.process.poll() is None, service.log_tail()
    print(
        f"\n[{database.backend}] {total} feedback items by {WRITERS} writers in batches of {BATCH}: "
        f"stored in {first_seconds:.2f} s ({total / first_seconds:,.0f} items/s), "
        f"all retried in {again_seconds:.2f} s ({total / again_seconds:,.0f} items/s)"
    )
