"""The demo for real: ``python -m cds_hooks.cli.demo`` as a subprocess, called over HTTP, then stopped.

It starts its own open FHIR server (sekmet-fhir) and loads every example, serves the CDS service,
prints its URLs and, on SIGINT (Ctrl-C) or SIGTERM, stops both — nothing may be left running.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from cds_hooks.cli.demo import load_manifest
from cds_hooks.testing.fhir_test_server import ensure_installed, free_port

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120  # sekmet start (< 1 s) + loading the examples (a few seconds) + slack for slow CI


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (zombies excluded)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text in cmdline and state != "Z":
                pids.append(int(entry.name))
    return pids


class Demo:
    """The demo subprocess with its stdout read line by line in a thread."""

    def __init__(self, tmp_path: Path):
        self.data_dir = tmp_path / "demo-data"
        self.port, self.fhir_port = free_port(), free_port()
        while self.fhir_port == self.port:
            self.fhir_port = free_port()
        self.stderr_path = tmp_path / "demo.stderr"
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cds_hooks.cli.demo",
                    "--port",
                    str(self.port),
                    "--fhir-port",
                    str(self.fhir_port),
                    "--no-open",
                    "--data-dir",
                    str(self.data_dir),
                ],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,  # its own process group: the cleanup can always kill it all
            )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(
            f"the demo did not print {text!r} (exit code {self.process.poll()}):\n"
            + "\n".join(self.output)
            + "\n--- stderr ---\n"
            + self.stderr_path.read_text(errors="replace")[-4000:]
        )

    def printed(self, label: str) -> str:
        for line in self.output:
            if line.strip().startswith(label):
                return line.split(label, 1)[1].strip()
        raise AssertionError(f"no {label!r} line in:\n" + "\n".join(self.output))

    def kill_everything(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    ensure_installed()  # a first-time install must not count against the start-up timeout
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        if running.process.poll() is None or processes_mentioning(str(running.data_dir)):
            running.kill_everything()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_serves_the_examples_and_stops_everything(demo: Demo, stop_signal: signal.Signals):
    demo.wait_for("Press Ctrl-C to stop", READY_TIMEOUT)
    fhir_base = demo.printed("FHIR server (open, no auth):")
    discovery = demo.printed("Discovery:")
    assert fhir_base == f"http://127.0.0.1:{demo.fhir_port}/fhir"
    assert discovery == f"http://127.0.0.1:{demo.port}/cds-services"

    # The FHIR server is open (no token), as the CDS Hooks Sandbox needs it, and holds the examples.
    manifest = load_manifest()
    item = next(i for i in manifest["examples"] if i["expected_rules"] == ["insulin-antibody-workup"])
    pid = item["patient_id"]
    patient = requests.get(f"{fhir_base}/Patient/{pid}", timeout=10)
    assert patient.status_code == 200 and patient.json()["id"] == pid
    everyone = requests.get(f"{fhir_base}/Patient", params={"_count": 1}, timeout=10)
    assert everyone.json()["total"] >= len(manifest["examples"])

    services = requests.get(discovery, timeout=10).json()["services"]
    assert "immune-insulin-resistance" in {s["id"] for s in services}

    # A ready-made Sandbox link with this FHIR server, this discovery URL and an example patient.
    sandbox = next(line for line in demo.output if "https://sandbox.cds-hooks.org/?" in line)
    query = parse_qs(urlsplit(sandbox.split(": ", 1)[1]).query)
    assert query["fhirServiceUrl"] == [fhir_base] and query["serviceDiscoveryURL"] == [discovery]
    assert query["hook"] == ["patient-view"] and query["patientId"][0] in {
        i["patient_id"] for i in manifest["examples"]
    }
    assert any(line.strip().startswith("curl -s -X POST") for line in demo.output)

    # The printed timeline link opens the SMART app for an example patient (open-server mode).
    timeline = requests.Session().get(demo.printed("Timeline:"), timeout=60)
    assert timeline.status_code == 200 and timeline.url.startswith(f"http://127.0.0.1:{demo.port}/app/")
    assert "Why this card" in timeline.text and "the rule fires" in timeline.text

    # The service, through real HTTP, fetching everything from the demo's FHIR server.
    r = requests.post(
        f"{discovery}/immune-insulin-resistance",
        json={
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "fhirServer": fhir_base,
            "context": {"userId": "Practitioner/example", "patientId": pid},
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert sorted(c["source"]["topic"]["code"] for c in r.json()["cards"]) == item["expected_rules"]

    sekmet = [p for p in processes_mentioning(str(demo.data_dir)) if p != demo.process.pid]
    assert sekmet, "the FHIR server process should be running"

    demo.process.send_signal(stop_signal)
    assert demo.process.wait(30) == 0
    demo.wait_for("CDS Hooks demo stopped.", 5)
    assert processes_mentioning(str(demo.data_dir)) == []  # the FHIR server is gone too
    for port in (demo.port, demo.fhir_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_demo_reports_a_busy_port_and_leaves_nothing_running(tmp_path: Path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cds_hooks.cli.demo",
                "--port",
                str(port),
                "--fhir-port",
                str(free_port()),
                "--no-open",
                "--data-dir",
                str(tmp_path / "d"),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert re.search(rf"cannot listen on 127\.0\.0\.1:{port}", done.stderr)
    assert processes_mentioning(str(tmp_path / "d")) == []
