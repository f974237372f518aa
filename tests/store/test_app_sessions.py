"""Issue 25 point 6: the SMART app's and the dashboard's server-side sessions live in the database
(``app_session``), so several hosts behind a load balancer sharing it share the sessions — on SQLite (one
host, several workers) and PostgreSQL (several hosts)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.store.database import Store, app_session_table
from cds_hooks.web.app_sessions import COOKIE, AppSessions
from tests.conftest import make_settings

TOKEN = "committee-token"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    return request.getfixturevalue("postgres_database")


def test_a_session_made_on_one_host_is_read_deleted_and_expires_on_another(url: str):
    host_a, host_b = Store(url), Store(url)  # two engines: two hosts on one database
    try:
        sessions_a, sessions_b = AppSessions(host_a), AppSessions(host_b)
        data = {
            "kind": "smart",
            "iss": "https://ehr.example.org/fhir",
            "access_token": "t0k3n",
            "patient": "p1",
            "expires_at": time.time() + 60,
            "app_context": {"rule": "animal-insulin-switch"},
        }
        session_id = sessions_a.create(data, 60)
        assert sessions_b.get(session_id) == data
        # The table is keyed by a hash of the cookie value, never the cookie itself.
        with host_b.engine.connect() as conn:
            keys = list(conn.execute(select(app_session_table.c.key)).scalars())
        assert keys == [hashlib.sha256(session_id.encode()).hexdigest()] and session_id not in keys
        sessions_b.delete(session_id)
        assert sessions_a.get(session_id) is None
        # Expiry: a row past its time is not a session, and is removed when the next one is stored.
        short = sessions_a.create({"kind": "pending"}, 1)
        later = datetime.now(UTC) + timedelta(seconds=2)
        assert host_b.app_session(hashlib.sha256(short.encode()).hexdigest(), now=later) is None
        with host_a.engine.begin() as conn:
            conn.execute(
                app_session_table.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert sessions_b.get(short) is None
        sessions_b.create({"kind": "pending"}, 60)
        with host_a.engine.connect() as conn:
            assert len(conn.execute(select(app_session_table.c.key)).all()) == 1
        assert sessions_a.get("x" * 101) is None and sessions_a.get(None) is None
    finally:
        host_a.dispose()
        host_b.dispose()


def test_dashboard_sign_in_on_one_instance_is_valid_on_another(url: str, tmp_path: Path):
    """Behind a load balancer: the sign-in reaches instance A, the next page instance B (another data
    directory, the same database). With file sessions B did not know the cookie."""
    apps = [
        create_app(
            make_settings(tmp_path / name, database_url=url, admin_token=TOKEN), knowledge=default_knowledge()
        )
        for name in ("a", "b")
    ]
    try:
        a, b = (app.test_client() for app in apps)
        assert a.post("/dashboard/sign-in", data={"token": TOKEN}).status_code == 303
        cookie = a.get_cookie(COOKIE)
        assert cookie is not None
        b.set_cookie(COOKIE, cookie.value)
        assert b.get("/dashboard").status_code == 200
        assert not (tmp_path / "a" / "data" / "app-sessions").exists()
    finally:
        for app in apps:
            app.extensions["cds_hooks"].store.dispose()
