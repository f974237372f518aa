"""Start, load and stop a real FHIR R4 server (sekmet-fhir) for the tests and the demo.

The server runs as a separate process from its own virtualenv (``scripts/install-fhir-server.sh``),
because sekmet-fhir pins FastAPI, pydantic and fhir.resources versions that must not leak into the
service's environment. Nothing here is used in the service's request path.

Typical use::

    with LocalFhirServer(tmp_dir, tokens=["secret"]) as server:
        server.load_bundle(transaction_bundle)
        bundle = server.get("Observation", params={"patient": "p1"})
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests

SEKMET_VERSION = "0.1.1"
FHIR_JSON = "application/fhir+json"
_INSTALL_SCRIPT = Path("scripts") / "install-fhir-server.sh"
Params = Mapping[str, Any] | list[tuple[str, Any]]


class FhirServerError(RuntimeError):
    """The local FHIR server failed to start, or answered a request with an error.

    ``status`` is the HTTP status (None when the process itself failed) and ``outcome`` the
    server's OperationOutcome, when it sent one.
    """

    def __init__(self, message: str, *, status: int | None = None, outcome: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.outcome = outcome


def repo_root() -> Path | None:
    """The source checkout this module lives in (None when installed from a wheel)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / _INSTALL_SCRIPT).is_file() else None


def default_venv() -> Path:
    """``$CDS_HOOKS_FHIR_VENV`` or ``.venv-fhir``, relative to the repository root (as the install script)."""
    venv = Path(os.environ.get("CDS_HOOKS_FHIR_VENV") or ".venv-fhir")
    if venv.is_absolute():
        return venv
    return (repo_root() or Path.cwd()) / venv


def is_installed(venv: Path) -> bool:
    """True when the pinned sekmet-fhir version is installed in ``venv``."""
    dist_info = f"sekmet_fhir-{SEKMET_VERSION}.dist-info"
    return (venv / "bin" / "python").exists() and any(venv.glob(f"lib/python*/site-packages/{dist_info}"))


def ensure_installed(venv: Path | None = None, *, timeout: float = 600) -> Path:
    """Install sekmet-fhir into its own virtualenv unless it is already there; returns the venv.

    Runs ``scripts/install-fhir-server.sh`` so a fresh clone needs no manual step. A file lock
    keeps parallel test workers (pytest-xdist) from installing at the same time.
    """
    venv = (venv or default_venv()).absolute()
    if is_installed(venv):
        return venv
    root = repo_root()
    if root is None:
        raise FhirServerError(
            f"sekmet-fhir=={SEKMET_VERSION} is not installed in {venv} and the install script is not "
            f"available; create that virtualenv and `pip install sekmet-fhir=={SEKMET_VERSION}` into it"
        )
    venv.mkdir(parents=True, exist_ok=True)
    with open(venv / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_installed(venv):
            env = {**os.environ, "CDS_HOOKS_FHIR_VENV": str(venv)}
            done = subprocess.run(
                ["bash", str(root / _INSTALL_SCRIPT)],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode != 0 or not is_installed(venv):
                raise FhirServerError(
                    f"installing sekmet-fhir into {venv} failed (exit {done.returncode}):\n"
                    f"{done.stdout[-2000:]}{done.stderr[-4000:]}"
                )
    return venv


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def outcome_text(body: Any) -> str:
    """The human-readable part of an OperationOutcome (diagnostics or details.text of each issue)."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ""
    parts = []
    for issue in body.get("issue") or []:
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code", "")
        parts.append(f"{issue.get('severity', '?')}: {text}")
    return "; ".join(parts)


class LocalFhirServer:
    """One sekmet-fhir server process on a local port, with its own settings and database in ``data_dir``.

    ``tokens``: static bearer tokens the server requires on every FHIR request (``/metadata`` stays
    open). With ``tokens=None`` the server is open (no auth), which is what the CDS Hooks Sandbox
    needs when it reads the server from a browser.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        tokens: list[str] | None = None,
        venv: Path | None = None,
    ) -> None:
        if tokens is not None and not tokens:
            raise ValueError("tokens must be None (open server) or a non-empty list of bearer tokens")
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.tokens = list(tokens) if tokens is not None else None
        self.venv = (venv or default_venv()).absolute()
        self._fixed_port = port
        self.port = port or 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = 0
        self._session = requests.Session()
        if self.tokens:
            self._session.headers["Authorization"] = f"Bearer {self.tokens[0]}"
        self._session.headers["Accept"] = FHIR_JSON

    # ---------------------------------------------------------------- paths and urls

    @property
    def base_url(self) -> str:
        """FHIR base, e.g. ``http://127.0.0.1:41234/fhir`` (paging links are built from it)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/fhir"

    @property
    def token(self) -> str | None:
        """The bearer token this wrapper sends (None for an open server)."""
        return self.tokens[0] if self.tokens else None

    @property
    def settings_path(self) -> Path:
        return self.data_dir / "settings.yaml"

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr: read this when it misbehaves."""
        return self.data_dir / "sekmet.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def settings(self) -> dict[str, Any]:
        """The per-run sekmet settings (see docs/fhir-test-server.md for why each one is set)."""
        auth: dict[str, Any] = {"types": ["none"]}
        if self.tokens:
            auth = {"types": ["bearer"], "tokens": self.tokens}
        return {
            "base_url": self.base_url,
            "host": self.host,
            "port": self.port,
            "data_dir": str(self.data_dir / "data"),
            "own_private_key_path": str(self.data_dir / "keys" / "sekmet_private.pem"),
            "server_auth": auth,
            # Its default simulator answers orders by itself (it changes MedicationRequests).
            "simulator": {"enabled": False},
            # Store what we send even where its R4B models are stricter than other servers.
            "validation": {"inbound": "warn"},
            # Don't record every request and response in its traffic table.
            "log_inbound": False,
        }

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 30) -> Self:
        """Write settings.yaml, launch the server from its own venv and wait until /metadata answers."""
        if self.running:
            return self
        python = self.venv / "bin" / "python"
        if not python.exists():
            raise FhirServerError(
                f"no FHIR server virtualenv at {self.venv}; run scripts/install-fhir-server.sh "
                f"(or call ensure_installed())"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # An OS-picked port can be taken by someone else before the server binds it: retry then.
        attempts = 1 if self._fixed_port else 3
        for attempt in range(1, attempts + 1):
            self.port = self._fixed_port or free_port(self.host if self.host != "0.0.0.0" else "127.0.0.1")
            self._launch(python)
            try:
                self._wait_ready(timeout)
                return self
            except FhirServerError:
                exited = self._process is not None and self._process.poll() is not None
                self.stop()
                if not exited or attempt == attempts:
                    raise
        return self

    def _launch(self, python: Path) -> None:
        # JSON is valid YAML, and it keeps PyYAML out of the service's dependencies.
        self.settings_path.write_text(json.dumps(self.settings(), indent=2))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SEKMET_", "VIRTUAL_ENV", "PYTHON"))}
        env["SEKMET_CONFIG"] = str(self.settings_path)
        command = [
            str(python),
            "-m",
            "sekmet.cli",
            "serve",
            "--config",
            str(self.settings_path),
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            # cwd = data_dir: sekmet writes relative paths (reports/, keys/) into its working directory.
            self._process = subprocess.Popen(
                command,
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        atexit.register(self.stop)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise FhirServerError(f"FHIR server exited with code {code} during start\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                # The log line proves it is *our* process on that port, not another server answering.
                if requests.get(
                    f"{self.base_url}/metadata", timeout=2
                ).status_code == 200 and "Uvicorn running on" in self.log_tail(self._log_start):
                    return
            time.sleep(0.1)
        raise FhirServerError(
            f"FHIR server did not answer {self.base_url}/metadata within {timeout} s\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM and wait for a clean shutdown (0.2–3 s); SIGKILL after ``timeout``. Idempotent."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tail(self, start: int | None = None) -> str:
        """The server log from byte ``start`` (default: the last 4000 bytes), for error messages."""
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - 4000) if start is None else start)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    # ---------------------------------------------------------------- REST helpers

    def url(self, path: str) -> str:
        """Absolute URL for a path relative to the FHIR base (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A raw request with this server's token; no status check (for tests of error answers)."""
        kwargs.setdefault("timeout", 30)
        return self._session.request(method, self.url(path), **kwargs)

    def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """GET a read or search (``"Observation"``, ``"Patient/p1"``, or a full ``next`` link)."""
        return self._checked(self.request("GET", path, params=params))

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Create or update ``resource`` at ``Type/id`` (its id is kept); returns the stored resource."""
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not rtype or not rid:
            raise ValueError("put() needs a resource with resourceType and id")
        return self._checked(
            self.request(
                "PUT",
                f"{rtype}/{rid}",
                data=json.dumps(resource),
                headers={"Content-Type": FHIR_JSON, "Prefer": "return=representation"},
            )
        )

    def load_bundle(self, bundle: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """POST a transaction (or batch) Bundle; returns the response Bundle.

        Use ``PUT Type/id`` entries where ids must stay stable: POSTed resources get server ids.
        Raises FhirServerError with the server's OperationOutcome text when anything failed.
        ``timeout``: a real-sized record (thousands of entries) takes sekmet-fhir 10 s or more.
        """
        response = self._checked(
            self.request(
                "POST", "", data=json.dumps(bundle), headers={"Content-Type": FHIR_JSON}, timeout=timeout
            )
        )
        failures = []
        for i, entry in enumerate(response.get("entry") or []):
            status = (entry.get("response") or {}).get("status", "")
            if status[:1] not in ("2", "3"):
                text = outcome_text((entry.get("response") or {}).get("outcome"))
                failures.append(f"entry {i}: {status} {text}".strip())
        if failures:
            raise FhirServerError("Bundle entries failed: " + "; ".join(failures), status=200, outcome=None)
        return response

    def _checked(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if response.status_code >= 400:
            text = outcome_text(body) or response.text[:1000]
            raise FhirServerError(
                f"{response.request.method} {response.url} → {response.status_code}: {text}",
                status=response.status_code,
                outcome=body if isinstance(body, dict) else None,
            )
        if not isinstance(body, dict):
            raise FhirServerError(
                f"{response.request.method} {response.url} did not answer with JSON",
                status=response.status_code,
            )
        return body
