"""Pytest plugin: a throwaway PostgreSQL server for the session, for tests that need a real one.

Registered from ``tests/conftest.py`` (``pytest_plugins``). Nothing starts unless a test asks for a
fixture below. The server is the Debian/PGDG one found on ``PATH`` or in ``/usr/lib/postgresql/*/bin``
(``initdb``, ``pg_ctl``; ``scripts/install-postgres.sh`` installs it): a fresh cluster in a temporary
directory, trust authentication, listening on a free port of 127.0.0.1 only, with its socket in that
directory. As root the cluster is created and run as the ``postgres`` OS user (PostgreSQL refuses to
run as root). It is stopped (``pg_ctl stop -m fast``) and deleted at the end of the session.

``CDS_HOOKS_TEST_POSTGRES_URL`` (a SQLAlchemy URL of a superuser, or a role allowed to create
databases) uses an existing server instead of starting one.

If PostgreSQL or psycopg is missing, or the server cannot start, the tests that need it are skipped
with the reason and how to fix it (shown in pytest's short summary, ``-ra``).

Fixtures:

- ``postgres_server`` (session): the running server; ``create_database()`` / ``drop_database()``.
- ``postgres_url`` (session): ``postgresql+psycopg://postgres@127.0.0.1:<port>/<db>`` of one database
  created for the session.
- ``postgres_database`` (function): the URL of a fresh, empty database for one test, dropped after it.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

URL_VARIABLE = "CDS_HOOKS_TEST_POSTGRES_URL"
INSTALL_HINT = (
    "install PostgreSQL with `apt-get install postgresql` (or run scripts/install-postgres.sh as root), "
    f"or point {URL_VARIABLE} at a PostgreSQL server"
)
_DRIVER_HINT = "install the driver with `pip install 'psycopg[binary]>=3.1'` (the `test` extra has it)"
_status: list[str] = []  # one line for the terminal summary


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be used here; the message says why and how to fix it."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def find_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: from PATH, else the newest Debian install."""
    initdb = shutil.which("initdb")
    if initdb:
        directory = Path(os.path.realpath(initdb)).parent
        if (directory / "pg_ctl").exists():
            return directory
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _psycopg():  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError:
        raise PostgresUnavailable(f"the PostgreSQL driver psycopg is not installed; {_DRIVER_HINT}") from None
    return psycopg


class PostgresServer:
    """A PostgreSQL server reachable at ``host:port`` as superuser ``user`` (trust auth, no password).

    ``start()`` creates and starts a throwaway cluster; ``external(url)`` wraps an existing server.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, user: str = "postgres", password: str = ""):
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.admin_database = "postgres"
        self.version = ""
        self._bindir: Path | None = None
        self._root: Path | None = None
        self._run_as: list[str] = []

    # ------------------------------------------------------------------ URLs and databases

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"{driver}://{auth}@{self.host}:{self.port}/{database}"

    def _admin(self):  # type: ignore[no-untyped-def]
        psycopg = _psycopg()
        return psycopg.connect(
            self.url(self.admin_database, driver="postgresql"), autocommit=True, connect_timeout=10
        )

    def create_database(self, prefix: str = "cds_hooks_test") -> str:
        """Create an empty database with a unique name; returns its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by ``create_database`` (closing its remaining connections first)."""
        name = url.rsplit("/", 1)[-1]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # ------------------------------------------------------------------ an existing server

    @classmethod
    def external(cls, url: str) -> PostgresServer:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        server = cls(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password or "",
        )
        server.admin_database = parsed.database or "postgres"
        try:
            with server._admin() as conn:
                server.version = str(conn.execute("SHOW server_version").fetchone()[0])
        except PostgresUnavailable:
            raise
        except Exception as exc:
            raise PostgresUnavailable(
                f"cannot connect to {URL_VARIABLE} ({parsed.host}:{parsed.port}): {exc}"
            ) from None
        return server

    # ------------------------------------------------------------------ a throwaway cluster

    def start(self, attempts: int = 3) -> PostgresServer:
        try:
            return self._start(attempts)
        except BaseException:
            self.stop()
            raise

    def _start(self, attempts: int) -> PostgresServer:
        _psycopg()  # fail early, with the right hint, when the driver is missing
        bindir = find_binaries()
        if bindir is None:
            raise PostgresUnavailable(
                f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}"
            )
        self._bindir = bindir
        owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run initdb and the server as the postgres OS user.
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running as root, and `runuser` is missing to drop to `postgres`")
            try:
                import pwd

                account = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, and there is no `postgres` OS user to run the server; {INSTALL_HINT}"
                ) from None
            owner = (account.pw_uid, account.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        # A short path under /tmp: the socket path must stay under ~100 bytes, and the postgres user
        # must be able to reach it (pytest's own temp directories are private to root).
        self._root = Path(tempfile.mkdtemp(prefix="cds-hooks-pg-"))
        atexit.register(self.stop)
        if owner is not None:
            os.chown(self._root, *owner)
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            "initdb",
            timeout=120,
        )
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._root} "
                # A disposable cluster: no flushing to disk (the tests kill the service, never PostgreSQL).
                "-c fsync=off -c full_page_writes=off -c max_connections=200"
            )
            done = self._run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                "pg_ctl start",
                timeout=90,
                check=False,
            )
            if done.returncode == 0:
                break
            if attempt == attempts:  # a port taken between choosing and binding it: try another
                raise PostgresUnavailable(
                    f"PostgreSQL did not start (pg_ctl exit {done.returncode}): "
                    f"{(done.stdout + done.stderr).strip()[-800:]}\n{self.log_tail()}"
                )
        deadline = time.monotonic() + 30
        while True:
            try:
                with self._admin() as conn:
                    self.version = str(conn.execute("SHOW server_version").fetchone()[0])
                return self
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"PostgreSQL started but refuses connections: {exc}") from None
                time.sleep(0.2)

    @property
    def data_dir(self) -> Path:
        assert self._root is not None
        return self._root / "data"

    @property
    def log_path(self) -> Path:
        assert self._root is not None
        return self._root / "postgres.log"

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def _run(
        self, command: list[str], what: str, *, timeout: float, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                [*self._run_as, *command],
                cwd=self._root,  # the postgres user may not be allowed into the caller's directory
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{what} failed: {exc}") from None
        if check and done.returncode != 0:
            raise PostgresUnavailable(
                f"{what} failed (exit {done.returncode}): {(done.stdout + done.stderr).strip()[-800:]}"
            )
        return done

    def stop(self) -> None:
        """Stop the throwaway server (fast shutdown) and delete its directory. Idempotent."""
        atexit.unregister(self.stop)
        root, self._root = self._root, None
        if root is None:
            return
        try:
            # Whenever a postmaster may run (even after a failed or timed-out start).
            if self._bindir is not None and (root / "data" / "postmaster.pid").exists():
                pg_ctl = str(self._bindir / "pg_ctl")
                command = [*self._run_as, pg_ctl, "-D", str(root / "data"), "stop", "-m", "fast", "-w"]
                with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
                    done = subprocess.run(
                        command,
                        cwd=root,
                        capture_output=True,
                        timeout=40,
                        check=False,
                        stdin=subprocess.DEVNULL,
                    )
                    if done.returncode != 0:  # last resort: the postmaster's pid is the file's first line
                        pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
                        os.kill(pid, signal.SIGKILL)
        finally:
            shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (started here unless CDS_HOOKS_TEST_POSTGRES_URL is set);
    the tests that use it are skipped, with the reason, when there is none."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    try:
        server = PostgresServer.external(url) if url else PostgresServer().start()
    except PostgresUnavailable as exc:
        _status.append(f"PostgreSQL tests skipped: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    _status.append(
        f"PostgreSQL {server.version} at {server.host}:{server.port} "
        + ("(external)" if url else "(throwaway cluster, stopped at session end)")
    )
    try:
        yield server
    finally:
        if not url:
            server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """``postgresql+psycopg://…/<db>``: one database created for the whole session."""
    url = postgres_server.create_database("cds_hooks_session")
    yield url
    with contextlib.suppress(Exception):
        postgres_server.drop_database(url)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database for one test; dropped afterwards (stop your processes first)."""
    url = postgres_server.create_database()
    yield url
    with contextlib.suppress(Exception):
        postgres_server.drop_database(url)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    for line in _status:
        terminalreporter.write_line(line, yellow="skipped" in line)
