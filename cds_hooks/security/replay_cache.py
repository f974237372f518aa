"""The JWT replay cache (X7): every accepted ``(iss, jti)`` pair, kept in the service's database.

The table lives on the same SQLAlchemy ``metadata`` as feedback, so ``Store`` creates it and every
instance of the service that shares the database shares the cache. A token is accepted only by the
INSERT that creates its row: the primary key on ``(iss, jti)`` makes the database, not the process,
decide which of two concurrent instances saw the token first. Rows expire when the token could no
longer be accepted anyway (its ``exp`` plus the clock skew) and are purged opportunistically.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import BigInteger, Column, PrimaryKeyConstraint, String, Table, delete, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from cds_hooks.store.database import metadata

log = logging.getLogger("cds_hooks.security")

MAX_ISS_LENGTH = 512
MAX_JTI_LENGTH = 256

jwt_replay_table = Table(
    "jwt_replay",
    metadata,
    Column("iss", String(MAX_ISS_LENGTH), nullable=False),
    Column("jti", String(MAX_JTI_LENGTH), nullable=False),
    # Unix seconds after which the token is refused by its exp anyway, so the row is no longer needed.
    Column("expires_at", BigInteger, nullable=False, index=True),
    PrimaryKeyConstraint("iss", "jti", name="pk_jwt_replay_iss_jti"),
)


class ReplayCache:
    """Insert-or-fail record of the JWT ids already accepted, shared through the database."""

    def __init__(
        self,
        engine: Engine,
        *,
        purge_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ):
        self.engine = engine
        self.purge_interval = purge_interval
        self.clock = clock
        self._last_purge = float("-inf")
        self._purge_lock = threading.Lock()
        self._create_table()

    def _create_table(self) -> None:
        """``Store`` normally created the table already; this covers a store built before this module
        was imported. Another worker may win the race to create it: the retry then finds it."""
        try:
            jwt_replay_table.create(self.engine, checkfirst=True)
        except DBAPIError:
            jwt_replay_table.create(self.engine, checkfirst=True)

    def remember(self, iss: str, jti: str, expires_at: int) -> bool:
        """Record ``(iss, jti)``; True if this is its first sighting, False if it is a replay."""
        now = int(self.clock())
        self._maybe_purge(now)
        table = jwt_replay_table
        with self.engine.begin() as conn:
            # A row whose token can no longer be accepted does not block a (re)used jti.
            conn.execute(
                delete(table).where(table.c.iss == iss, table.c.jti == jti, table.c.expires_at < now)
            )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(table).values(iss=iss, jti=jti, expires_at=int(expires_at)))
        except IntegrityError:
            return False
        return True

    def purge_expired(self) -> int:
        """Delete the rows of tokens that have expired; returns how many."""
        now = int(self.clock())
        with self.engine.begin() as conn:
            result = conn.execute(delete(jwt_replay_table).where(jwt_replay_table.c.expires_at < now))
        self._last_purge = now
        return int(result.rowcount or 0)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(jwt_replay_table)).scalar_one())

    def _maybe_purge(self, now: int) -> None:
        """At most one purge per interval per process, and never in the way of a request."""
        if now - self._last_purge < self.purge_interval or not self._purge_lock.acquire(blocking=False):
            return
        try:
            removed = self.purge_expired()
            if removed:
                log.debug("purged %d expired JWT replay entries", removed)
        except DBAPIError:
            log.warning("could not purge expired JWT replay entries", exc_info=True)
            self._last_purge = now
        finally:
            self._purge_lock.release()
