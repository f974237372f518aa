"""Server-side sessions for the SMART app: the browser holds only a random id in a cookie.

The access token, the PKCE verifier and the launch ``state`` stay on the server, in a cachelib
file cache under the service's data directory (files readable by the service's user only). Each entry
expires on its own timeout: a signed-in session when its access token does, a pending launch after
ten minutes. The cache key is a hash of the cookie value, so the files never name a live cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from cachelib.file import FileSystemCache
from flask import Response, current_app, redirect, request

COOKIE = "cds_app_session"
EXTENSION = "cds_hooks.app_sessions"
PENDING_SECONDS = 600
DEFAULT_TOKEN_SECONDS = 3600
MAX_SESSION_SECONDS = 12 * 3600


class AppSessions:
    def __init__(self, directory: Path):
        self._cache = FileSystemCache(
            str(directory), threshold=5000, default_timeout=PENDING_SECONDS, mode=0o600
        )

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def create(self, data: dict[str, Any], seconds: int) -> str:
        """Store ``data`` for ``seconds`` under a new random id, and return the id (the cookie value)."""
        session_id = secrets.token_urlsafe(32)
        self._cache.set(self._key(session_id), data, timeout=max(1, min(seconds, MAX_SESSION_SECONDS)))
        return session_id

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        if not session_id or len(session_id) > 100:
            return None
        data = self._cache.get(self._key(session_id))
        return data if isinstance(data, dict) else None

    def delete(self, session_id: str | None) -> None:
        if session_id:
            self._cache.delete(self._key(session_id))


def app_sessions() -> AppSessions:
    """The app's session store, created on first use under the service's data directory."""
    sessions = current_app.extensions.get(EXTENSION)
    if sessions is None:
        settings = current_app.extensions["cds_hooks"].settings
        sessions = current_app.extensions.setdefault(
            EXTENSION, AppSessions(settings.data_dir / "app-sessions")
        )
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
