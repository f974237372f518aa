"""The real service under gunicorn as a separate process group, feedback builders and database counts.

``ServiceProcess`` runs ``python -m cds_hooks serve`` (the README's command) in its own session, so
``kill()`` (SIGKILL) and ``stop()`` (SIGTERM, then SIGKILL) reach the gunicorn master *and* its workers.
The counts are read straight from the database with SQLAlchemy, never through the service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, func, select

from cds_hooks.security.replay_cache import jwt_replay_table
from cds_hooks.store.database import feedback_table
from cds_hooks.testing.fhir_test_server import free_port
from tests.builders import SERVICE

REPO_ROOT = Path(__file__).resolve().parents[2]
FEEDBACK_PATH = f"/cds-services/{SERVICE}/feedback"
TIMESTAMP = "2026-11-27T10:05:31Z"


@dataclass
class ServiceProcess:
    """One ``cds-hooks serve`` (gunicorn, gthread) on 127.0.0.1 with its own ``CDS_HOOKS_*`` environment."""

    workdir: Path
    env: dict[str, str]
    name: str = "service"
    workers: int = 2
    threads: int = 4
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def _environment(self) -> dict[str, str]:
        # Nothing from the developer's CDS_HOOKS_* settings leaks in: only what the test chose.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_HOOKS_")}
        env.update({"CDS_HOOKS_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"})
        env.update(self.env)
        return env

    def launch(self) -> ServiceProcess:
        """Start the process group without waiting for it (see ``wait_ready``)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.starts += 1
        command = [
            sys.executable,
            "-m",
            "cds_hooks",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        command += ["--workers", str(self.workers), "--threads", str(self.threads)]
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start {self.starts}: {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() reaches every worker
            )
        return self

    def wait_ready(self, timeout: float = 30) -> ServiceProcess:
        """Until GET /healthz answers 200 (which includes a database round trip)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode} during start:\n{self.log_tail()}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not become healthy in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def start(self, timeout: float = 30) -> ServiceProcess:
        return self.launch().wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL the whole gunicorn process group: master and workers die at once, mid-request."""
        self._signal_group(signal.SIGKILL, wait=10)

    def stop(self) -> None:
        """SIGTERM the group (gunicorn's graceful stop), SIGKILL what is left after 10 s. Idempotent."""
        self._signal_group(signal.SIGTERM, wait=10)

    def _signal_group(self, sig: signal.Signals, wait: float) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        pgid = process.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            process.wait(10)
        # Workers are not our children: make sure none survives its master.
        deadline = time.monotonic() + wait
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_members(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""


def _group_members(pgid: int) -> int:
    """Live (non-zombie) processes in a process group, from /proc."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            count += 1
    return count


# ------------------------------------------------------------------------------------- feedback


def feedback_item(card: str, n: int) -> dict[str, Any]:
    """A valid feedback item for card ``card``: accepted (even n) or overridden with a reason (odd n)."""
    item: dict[str, Any] = {"card": card, "outcomeTimestamp": TIMESTAMP}
    if n % 2 == 0:
        item.update(outcome="accepted", acceptedSuggestions=[{"id": f"{card}-s1"}])
    else:
        item.update(
            outcome="overridden",
            overrideReason={
                "reason": {
                    "code": "not-applicable",
                    "system": "https://x.example/override",
                    "display": "n/a",
                },
                "userComment": f"durability test item {n}",
            },
        )
    return item


def batch_cards(prefix: str, writer: int, batch: int, size: int) -> list[str]:
    return [f"{prefix}-w{writer}-b{batch:04d}-{i:03d}" for i in range(size)]


def feedback_body(cards: list[str]) -> dict[str, Any]:
    return {"feedback": [feedback_item(card, n) for n, card in enumerate(cards)]}


# ------------------------------------------------------------------------------------- the database


@dataclass(frozen=True)
class Counts:
    rows: int
    fingerprints: int
    cards: int


def feedback_counts(url: str, prefix: str) -> Counts:
    """Rows, distinct fingerprints and distinct card ids of the feedback whose card id starts with prefix."""
    engine = create_engine(url)
    try:
        t = feedback_table
        with engine.connect() as conn:
            rows, fingerprints, cards = conn.execute(
                select(
                    func.count(), func.count(t.c.fingerprint.distinct()), func.count(t.c.card_uuid.distinct())
                ).where(t.c.card_uuid.like(f"{prefix}-%"))
            ).one()
    finally:
        engine.dispose()
    return Counts(int(rows), int(fingerprints), int(cards))


def rows_per_card(url: str, prefix: str) -> dict[str, int]:
    """How many feedback rows each card id (with that prefix) has."""
    engine = create_engine(url)
    try:
        t = feedback_table
        with engine.connect() as conn:
            result = conn.execute(
                select(t.c.card_uuid, func.count())
                .where(t.c.card_uuid.like(f"{prefix}-%"))
                .group_by(t.c.card_uuid)
            ).all()
    finally:
        engine.dispose()
    return {card: int(n) for card, n in result}


def replay_rows(url: str, iss: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(jwt_replay_table).where(jwt_replay_table.c.iss == iss)
                ).scalar_one()
            )
    finally:
        engine.dispose()
