"""The bundled SMART launcher (a test EHR authorization server and FHIR proxy) as a test process.

It lives in the shared material beside the repository (``shared/smart-launcher``, see its README) and
runs with ``node``. ``CDS_HOOKS_SMART_LAUNCHER_DIR`` overrides where it is looked for.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"SMART launcher available at (http://127\.0\.0\.1:\d+)")


def launcher_dir() -> Path | None:
    """The launcher folder: the setting, else ``shared/smart-launcher`` beside an ancestor of the repo."""
    configured = os.environ.get("CDS_HOOKS_SMART_LAUNCHER_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += [parent / "shared" / "smart-launcher" for parent in REPO.parents]
    return next((c for c in candidates if (c / "dist" / "launcher.js").is_file()), None)


def unavailable_reason() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (the SMART launcher runs with node)"
    if launcher_dir() is None:
        return "the bundled SMART launcher (shared/smart-launcher) is not beside this repository"
    return None


def launch_parameter(patient_id: str, practitioner_id: str = "test-practitioner") -> str:
    """The launcher's ``launch`` value for a provider EHR launch that skips login and authorization
    screens with a public client and PKCE always (the README's step 1)."""
    options = [0, patient_id, practitioner_id, "NONE", 1, 1, 0, "", "", "", "", "", "", "", 0, 2, ""]
    return base64.urlsafe_b64encode(json.dumps(options).encode()).decode().rstrip("=")


class SmartLauncher:
    """``node dist/launcher.js`` on a free loopback port in front of one FHIR R4 server."""

    def __init__(self, fhir_base: str):
        self.fhir_base = fhir_base
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    @property
    def iss(self) -> str:
        return f"{self.url}/v/r4/fhir"

    def start(self, timeout: float = 30) -> SmartLauncher:
        directory = launcher_dir()
        assert directory is not None, unavailable_reason()
        env = {
            **os.environ,
            "NODE_ENV": "production",
            "PORT": "0",
            "HOST": "127.0.0.1",
            "SECRET": "test-only",
            "FHIR_SERVER_R4": self.fhir_base,
            "FHIR_SERVER_R2": "",
            "FHIR_SERVER_R3": "",
        }
        self._process = subprocess.Popen(
            ["node", "dist/launcher.js"],
            cwd=directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        stdout = self._process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        seen: list[str] = []
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                self.stop()
                raise RuntimeError("the SMART launcher did not start:\n" + "".join(seen)) from None
            seen.append(line)
            match = READY.search(line)
            if match:
                self.url = match.group(1)
                return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
