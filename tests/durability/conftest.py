"""Fixtures for the durability tests: a database per test (SQLite file or PostgreSQL) and service processes.

Every process a test starts is stopped at its end (the ``services`` fixture), before the test's
PostgreSQL database is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.durability.service import ServiceProcess


@dataclass(frozen=True)
class Database:
    """Where the service keeps its data: the environment that selects it, and a URL to count rows."""

    backend: str
    url: str
    env: dict[str, str]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The default embedded SQLite file in CDS_HOOKS_DATA_DIR, or a fresh PostgreSQL database
    (skipped, with the reason, when PostgreSQL is not available)."""
    data_dir = tmp_path / "data"
    env = {"CDS_HOOKS_DATA_DIR": str(data_dir)}
    if request.param == "sqlite":
        return Database("sqlite", f"sqlite:///{data_dir / 'cds-hooks.sqlite3'}", env)
    url = request.getfixturevalue("postgres_database")
    return Database("postgresql", url, {**env, "CDS_HOOKS_DATABASE_URL": url})


ServiceFactory = Callable[..., ServiceProcess]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[ServiceProcess]:
    """``services(env, name=..., workers=..., threads=...)`` → a not-yet-started ServiceProcess;
    all of them are stopped (SIGTERM, then SIGKILL) when the test ends, however it ends."""
    made: list[ServiceProcess] = []

    def factory(env: dict[str, str], name: str = "service", **kwargs: int) -> ServiceProcess:
        service = ServiceProcess(tmp_path / "services", env, name=name, **kwargs)
        made.append(service)
        return service

    try:
        yield factory  # type: ignore[misc]
    finally:
        for service in made:
            service.stop()
