"""Start and stop gunicorn for the service and the ceiling, find its workers, read their memory."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import requests

from cds_hooks.testing.fhir_test_server import free_port

REPO = Path(__file__).resolve().parents[1]
SERVICE_APP = "cds_hooks.app:create_app()"
CEILING_APP = "bench.ceiling_app:create_app()"


@dataclass(frozen=True)
class WorkerSetup:
    """The gunicorn worker setup shared by the service and the ceiling."""

    workers: int = 2
    threads: int = 2
    worker_class: str = "gthread"
    keepalive: int = 5

    def args(self) -> list[str]:
        return [
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--worker-class",
            self.worker_class,
            "--keep-alive",
            str(self.keepalive),
        ]

    def describe(self, app: str = SERVICE_APP) -> str:
        return (
            f"gunicorn -w {self.workers} --threads {self.threads} -k {self.worker_class} "
            f'--keep-alive {self.keepalive} "{app}"'
        )


@dataclass
class Gunicorn:
    """One gunicorn master (own session, so the whole group can be stopped) on a free loopback port."""

    app: str
    setup: WorkerSetup
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Self:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            *self.setup.args(),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--chdir",
            str(REPO),
            "--timeout",
            "120",
            "--log-level",
            "warning",
            self.app,
        ]
        # Only the settings given here: nothing from the caller's CDS_HOOKS_* environment leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_HOOKS_")}
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Until every worker is booted and ``/healthz`` answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"gunicorn for {self.app} exited during start; see {self.log_path}")
            if len(self.worker_pids()) >= self.setup.workers:
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{self.base_url}/healthz", timeout=5).status_code == 200:
                        # Each worker imports the app on its own: give the slowest time to finish.
                        for _ in range(self.setup.workers * 4):
                            requests.get(f"{self.base_url}/healthz", timeout=10)
                        return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn for {self.app} was not ready within {timeout} s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        """Pids of the master's child processes (the workers)."""
        if self.process is None:
            return []
        return children_of(self.process.pid)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the master's process group; SIGKILL after ``timeout``. Idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        pgid = process.pid  # start_new_session: the master leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            process.wait(5)
        # Workers exit with their master; make sure none lingers in the group.
        deadline = time.monotonic() + 5
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the benchmark process dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def children_of(pid: int) -> list[int]:
    """Child pids of ``pid`` from /proc (``task/*/children`` when the kernel has it, else a scan)."""
    children: set[int] = set()
    task_dir = Path(f"/proc/{pid}/task")
    found_file = False
    with contextlib.suppress(OSError):
        for task in task_dir.iterdir():
            path = task / "children"
            if path.exists():
                found_file = True
                children.update(int(c) for c in path.read_text().split())
    if not found_file:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == pid:
                    children.add(int(entry.name))
    return sorted(children)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by ``pids`` (from /proc/<pid>/stat), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
