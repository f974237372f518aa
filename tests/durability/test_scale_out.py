"""Scale-out: two service instances (two gunicorn process groups) sharing one PostgreSQL database.

The realistic load-balancer set-up: both instances have ``CDS_HOOKS_PUBLIC_BASE_URL`` set to the one
public URL the EHR calls, so a token's ``aud`` is valid on either instance. The JWT replay cache and
the feedback fingerprints live in the shared database, so:

- a JWT accepted by instance A is refused as a replay by instance B (and the other way round), even
  when both receive it at the same moment;
- the same feedback batch posted to A and B at the same moment is stored once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.durability.service import (
    FEEDBACK_PATH,
    ServiceProcess,
    batch_cards,
    feedback_body,
    feedback_counts,
    replay_rows,
)
from tests.security.jwt_helpers import ISS, KeyPair, bearer, ec_key, jwks, token

PUBLIC_BASE = "https://cds.example.org"
DISCOVERY_AUD = PUBLIC_BASE + "/cds-services"
FEEDBACK_AUD = PUBLIC_BASE + FEEDBACK_PATH
RACES = 20
BATCHES = 20
BATCH = 50


@pytest.fixture(scope="module")
def client_key() -> KeyPair:
    """The EHR's ES384 key pair; the instances trust its public half."""
    return ec_key("scale-out-es384")


@pytest.fixture
def instances(
    postgres_database: str, services: Callable[..., ServiceProcess], tmp_path: Path, client_key: KeyPair
) -> tuple[ServiceProcess, ServiceProcess]:
    """Instances A and B on one fresh PostgreSQL database, started at the same time (so their four
    workers also race to create the tables), JWT required, one public base URL."""
    issuers = tmp_path / "trusted-issuers.json"
    issuers.write_text(json.dumps([{"iss": ISS, "jwks": jwks(client_key)}]), encoding="utf-8")
    env = {
        "CDS_HOOKS_DATABASE_URL": postgres_database,
        "CDS_HOOKS_JWT": "required",
        "CDS_HOOKS_TRUSTED_ISSUERS": str(issuers),
        "CDS_HOOKS_PUBLIC_BASE_URL": PUBLIC_BASE,
    }
    a = services({**env, "CDS_HOOKS_DATA_DIR": str(tmp_path / "a")}, name="instance-a").launch()
    b = services({**env, "CDS_HOOKS_DATA_DIR": str(tmp_path / "b")}, name="instance-b").launch()
    return a.wait_ready(), b.wait_ready()


def _discovery(instance: ServiceProcess, tok: str) -> requests.Response:
    return requests.get(instance.base_url + "/cds-services", headers=bearer(tok), timeout=10)


def _assert_refused(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers.get("WWW-Authenticate") == "Bearer"
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_jwt_accepted_by_one_instance_is_a_replay_for_the_other(
    instances: tuple[ServiceProcess, ServiceProcess], client_key: KeyPair, postgres_database: str
) -> None:
    a, b = instances

    first = token(client_key, DISCOVERY_AUD)
    assert _discovery(a, first).status_code == 200, a.log_tail()
    _assert_refused(_discovery(b, first))
    _assert_refused(_discovery(a, first))  # and on A itself (maybe another worker)

    second = token(client_key, DISCOVERY_AUD)
    assert _discovery(b, second).status_code == 200, b.log_tail()
    _assert_refused(_discovery(a, second))

    # The same fresh token at the same moment on both instances: exactly one of them accepts it.
    def race(tok: str) -> list[int]:
        barrier = threading.Barrier(2, timeout=10)

        def call(instance: ServiceProcess) -> int:
            barrier.wait()
            return _discovery(instance, tok).status_code

        with ThreadPoolExecutor(2) as pool:
            return sorted(pool.map(call, (a, b)))

    outcomes = [race(token(client_key, DISCOVERY_AUD)) for _ in range(RACES)]
    assert outcomes == [[200, 401]] * RACES, outcomes
    assert replay_rows(postgres_database, ISS) == 2 + RACES


def test_the_same_feedback_posted_to_both_instances_lands_once(
    instances: tuple[ServiceProcess, ServiceProcess], client_key: KeyPair, postgres_database: str
) -> None:
    a, b = instances
    prefix = f"scale-{uuid.uuid4().hex[:8]}"

    def post(instance: ServiceProcess, body: dict, barrier: threading.Barrier) -> dict:
        headers = bearer(token(client_key, FEEDBACK_AUD))  # every request its own jti
        barrier.wait()
        response = requests.post(instance.base_url + FEEDBACK_PATH, json=body, headers=headers, timeout=30)
        assert response.status_code == 200, f"{instance.name}: {response.status_code} {response.text}"
        return response.json()

    # Each batch goes to A and B at the same moment; four batches are in flight at any time.
    with ThreadPoolExecutor(8) as pool:
        pairs = []
        for n in range(BATCHES):
            body = feedback_body(batch_cards(prefix, 0, n, BATCH))
            barrier = threading.Barrier(2, timeout=20)
            pairs.append((pool.submit(post, a, body, barrier), pool.submit(post, b, body, barrier)))
        answers = [(fa.result(), fb.result()) for fa, fb in pairs]

    for from_a, from_b in answers:
        assert from_a["stored"] + from_b["stored"] == BATCH, (from_a, from_b)
        assert from_a["duplicates"] + from_b["duplicates"] == BATCH, (from_a, from_b)
    total = BATCHES * BATCH
    counts = feedback_counts(postgres_database, prefix)
    assert (counts.rows, counts.fingerprints, counts.cards) == (total, total, total), counts
    stored_by_a = sum(from_a["stored"] for from_a, _ in answers)
    print(
        f"\n[scale-out] {total} items posted to both instances: "
        f"{stored_by_a} stored by A, {total - stored_by_a} by B"
    )


def test_overlapping_feedback_in_different_orders_never_fails(
    instances: tuple[ServiceProcess, ServiceProcess], client_key: KeyPair, postgres_database: str
) -> None:
    """A sends items 0..N-1, B the same items N-1..0, at once. The test holds the middle item's unique
    key in its own open transaction until both requests wait for it, then lets go: whichever request
    takes the middle item next, each then needs a row the other has inserted but not committed.
    Correct behaviour: both answer 200 and every item is stored once."""
    from sqlalchemy import create_engine, func, insert, select, text

    from cds_hooks.hooks.protocol import parse_feedback
    from cds_hooks.store.database import _fingerprint, feedback_table

    a, b = instances
    prefix = f"order-{uuid.uuid4().hex[:8]}"
    body = feedback_body(batch_cards(prefix, 0, 0, BATCH))
    reverse = {"feedback": list(reversed(body["feedback"]))}
    middle = parse_feedback(body)[BATCH // 2]
    engine = create_engine(postgres_database)
    try:
        with engine.connect() as blocker, engine.connect() as watcher:
            blocker.execute(
                insert(feedback_table).values(
                    fingerprint=_fingerprint("immune-insulin-resistance", middle),
                    service_id="immune-insulin-resistance",
                    card_uuid=middle.card,
                    known_card=False,
                    outcome=middle.outcome,
                    outcome_timestamp=middle.outcome_timestamp,
                    accepted_suggestions="[]",
                    received_at=middle.outcome_timestamp,
                )
            )  # not committed: its unique-index entry makes every other insert of it wait

            def post(instance: ServiceProcess, payload: dict) -> tuple[int, str]:
                headers = bearer(token(client_key, FEEDBACK_AUD))
                r = requests.post(
                    instance.base_url + FEEDBACK_PATH, json=payload, headers=headers, timeout=30
                )
                return r.status_code, r.text

            with ThreadPoolExecutor(2) as pool:
                from_a = pool.submit(post, a, body)
                from_b = pool.submit(post, b, reverse)
                waiting_sql = text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                try:
                    for _ in range(200):
                        if watcher.execute(waiting_sql).scalar_one() >= 2:
                            break
                        watcher.rollback()
                        time.sleep(0.05)
                    else:
                        pytest.fail("the two requests never both waited for the held item")
                finally:
                    blocker.rollback()  # let go of the middle item
                answers = [from_a.result(), from_b.result()]
        with engine.connect() as conn:
            rows = conn.execute(
                select(func.count())
                .select_from(feedback_table)
                .where(feedback_table.c.card_uuid.like(f"{prefix}-%"))
            ).scalar_one()
    finally:
        engine.dispose()
    assert [status for status, _ in answers] == [200, 200], answers
    assert rows == BATCH
