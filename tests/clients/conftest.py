"""Fixtures for the third-party client tests: the example patients on the open FHIR test server (as an
EHR's FHIR server with no authorization, which both libraries can read), one service process per module
(``cds-hooks serve``, the README's command, under gunicorn) and where to leave each run's results.

Each module runs its client's driver once over every example patient; the driver's results are compared
here with the manifest's expected rule ids and written to build/test-artifacts/clients/<client>.json; the
rule ids each mode received go to <client>.md and <client>-received.json (scripts/clients_table.py puts both
clients in one table)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.cli.demo import load_examples, load_manifest, utc_today
from cds_hooks.testing.fhir_test_server import LocalFhirServer
from tests.durability.service import REPO_ROOT, ServiceProcess

ARTIFACTS = REPO_ROOT / "build" / "test-artifacts" / "clients"
MANIFEST = load_manifest()
EXPECTED = {item["patient_id"]: item["expected_rules"] for item in MANIFEST["examples"]}
MANIFEST_PATH = REPO_ROOT / "examples" / "manifest.json"


@pytest.fixture(scope="session")
def examples_server(open_fhir_server: LocalFhirServer) -> LocalFhirServer:
    """Every example patient on the open FHIR server, dates moved so the anchor date is today (UTC)."""
    load_examples(open_fhir_server, today=utc_today())
    return open_fhir_server


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, examples_server: LocalFhirServer
) -> Iterator[ServiceProcess]:
    workdir = tmp_path_factory.mktemp("client-service")
    env = {
        "CDS_HOOKS_DATA_DIR": str(workdir / "data"),
        "CDS_HOOKS_FHIR_ALLOW_PRIVATE": "true",  # the FHIR test server is on loopback
        "CDS_HOOKS_WARM_UP": "false",
    }
    process = ServiceProcess(workdir, env, name="service", workers=1, threads=4).start(timeout=60)
    try:
        yield process
    finally:
        process.stop()


def run_driver(command: list[str], name: str, timeout: float = 240) -> dict[str, Any]:
    """Run a client driver (its last argument is the results file) and return its results."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / f"{name}.json"
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [*command, str(out)], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )
    assert done.returncode == 0 and out.is_file(), (
        f"{name} driver failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
    return json.loads(out.read_text())


def mismatches(received: dict[str, list[str] | None]) -> list[str]:
    """Examples whose rule ids differ from the manifest's (``None``: no answer with cards)."""
    assert sorted(received) == sorted(EXPECTED)
    return [
        f"{pid}: got {received[pid]}, expected {EXPECTED[pid]}"
        for pid in sorted(EXPECTED)
        if received[pid] != EXPECTED[pid]
    ]


def write_table(name: str, prefetch_only: dict[str, Any], fhir_server: dict[str, Any]) -> Path:
    """The rule ids each mode received, per example patient, as a markdown table beside the JSON."""
    lines = ["| patient | expected | prefetch only | with fhirServer |", "|---|---|---|---|"]
    for pid in sorted(EXPECTED):
        cells = [
            ", ".join(x) if isinstance(x, list) else str(x)
            for x in (EXPECTED[pid], prefetch_only[pid], fhir_server[pid])
        ]
        lines.append(f"| {pid} | " + " | ".join(c or "—" for c in cells) + " |")
    path = ARTIFACTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    # What scripts/clients_table.py reads to put both clients side by side.
    received = {"prefetchOnly": prefetch_only, "fhirServer": fhir_server}
    (ARTIFACTS / f"{name}-received.json").write_text(json.dumps(received, indent=1) + "\n")
    return path
