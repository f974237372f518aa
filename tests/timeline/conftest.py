"""Fixtures for the SMART app and the dashboard: the example patients on the open FHIR test server,
the SMART launcher in front of it, the service on a real port, and headless Chromium with axe-core."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from cds_hooks.app import create_app
from cds_hooks.cli.demo import example_bundle, load_manifest
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.testing.fhir_test_server import LocalFhirServer, free_port
from tests.conftest import make_settings

from .smart_launcher import REPO, SmartLauncher, unavailable_reason

# ex24: porcine insulin and prednisolone with hyperglycaemia (two cards); ex25: SLE, positive receptor
# antibody, prednisone (type B confirmed and the glucocorticoid card).
PATIENTS = ("ex24", "ex25")
ARTIFACTS = REPO / "build" / "test-artifacts"
AXE = REPO / "build" / "axe-core" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def example_server(open_fhir_server: LocalFhirServer) -> LocalFhirServer:
    """The session's open FHIR server with the example patients this folder uses (PUT: idempotent)."""
    manifest = load_manifest()
    for item in manifest["examples"]:
        if item["patient_id"] in PATIENTS:
            open_fhir_server.load_bundle(example_bundle(item, manifest=manifest))
    return open_fhir_server


@pytest.fixture(scope="session")
def smart_launcher(example_server: LocalFhirServer) -> Iterator[SmartLauncher]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"SMART launcher unavailable: {reason}")
    launcher = SmartLauncher(example_server.base_url).start()
    try:
        yield launcher
    finally:
        launcher.stop()


class LogRecords(logging.Handler):
    """Every log line of the process while the live service runs (the tests look for tokens in it)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + " " + " ".join(str(v) for v in record.__dict__.values()))


class LiveService:
    def __init__(self, url: str, app: Any, log: LogRecords):
        self.url = url
        self.app = app
        self.log = log


@pytest.fixture(scope="session")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The service on a real loopback port (threaded werkzeug), with the dashboard on."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        tmp_path_factory.mktemp("live-service"), public_base_url=url, admin_token="committee-token"
    )
    app = create_app(settings, knowledge=default_knowledge())
    records = LogRecords()
    root = logging.getLogger()
    root.addHandler(records)
    previous = root.level
    root.setLevel(logging.DEBUG)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveService(url, app, records)
    finally:
        server.shutdown()
        thread.join(10)
        root.removeHandler(records)
        root.setLevel(previous)
        app.extensions["cds_hooks"].store.dispose()


@pytest.fixture(scope="session")
def chromium(chromium_browser: Any) -> Any:
    """The shared headless Chromium (tests/browser_plugin.py)."""
    return chromium_browser


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's browser bundle, installed with npm by scripts/install-axe-core.sh."""
    if not AXE.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed: axe-core cannot be installed")
        result = subprocess.run(
            ["bash", str(REPO / "scripts" / "install-axe-core.sh")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0 or not AXE.exists():
            pytest.skip(f"axe-core could not be installed with npm: {result.stderr[-300:]}")
    return AXE.read_text(encoding="utf-8")


def serious_violations(page: Any, axe_source: str) -> list[str]:
    """axe-core's serious and critical violations on the page as loaded (WCAG 2 A/AA rules)."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', "
        "'best-practice']})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
