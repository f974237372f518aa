"""Server-side sessions for the SMART app and the dashboard: the browser holds only a random id in a cookie.

The access token, the PKCE verifier and the launch ``state`` stay on the server, in the service's database
(table ``app_session``, SQLite or PostgreSQL), so that every worker and every instance behind a load
balancer sharing the database knows the session, whichever one the browser reaches next. Each entry
expires on its own: a signed-in session when its access token does, a pending launch after ten minutes;
expired rows are deleted when a new session is stored. The key is a hash of the cookie value, so the
table never names a live cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, current_app, redirect, request

from cds_hooks.store.database import Store

COOKIE = "cds_app_session"
EXTENSION = "cds_hooks.app_sessions"
PENDING_SECONDS = 600
DEFAULT_TOKEN_SECONDS = 3600
MAX_SESSION_SECONDS = 12 * 3600


class AppSessions:
    def __init__(self, store: Store):
        self._store = store

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def create(self, data: dict[str, Any], seconds: int) -> str:
        """Store ``data`` for ``seconds`` under a new random id, and return the id (the cookie value)."""
        session_id = secrets.token_urlsafe(32)
        lifetime = timedelta(seconds=max(1, min(seconds, MAX_SESSION_SECONDS)))
        self._store.put_app_session(self._key(session_id), data, datetime.now(UTC) + lifetime)
        return session_id

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        if not session_id or len(session_id) > 100:
            return None
        return self._store.app_session(self._key(session_id))

    def delete(self, session_id: str | None) -> None:
        if session_id:
            self._store.delete_app_session(self._key(session_id))


def app_sessions() -> AppSessions:
    """The app's session store, in the service's database (created on first use)."""
    sessions = current_app.extensions.get(EXTENSION)
    if sessions is None:
        store = current_app.extensions["cds_hooks"].store
        sessions = current_app.extensions.setdefault(EXTENSION, AppSessions(store))
    return sessions


def start_session(data: dict[str, Any], seconds: int, target: str, *, status: int = 302) -> Response:
    """Replace the browser's session by a new one holding ``data`` for ``seconds``, and redirect to
    ``target``. The cookie is HttpOnly, SameSite=Lax, Secure outside development, and lives as long."""
    sessions = app_sessions()
    sessions.delete(request.cookies.get(COOKIE))
    session_id = sessions.create(data, seconds)
    response = redirect(target, code=status)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=seconds,
        path="/",
        httponly=True,
        secure=current_app.extensions["cds_hooks"].settings.mode != "development",
        samesite="Lax",
    )
    return response
