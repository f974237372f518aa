"""Patients for the command-line tests, loaded once per session into the real FHIR servers.

Ids start with ``cli-`` because the servers are shared by the whole session."""

from __future__ import annotations

import pytest

from cds_hooks.testing.fhir_test_server import LocalFhirServer
from tests.builders import patient, porcine_statement, transaction

PORK = "cli-pork"  # an active porcine-insulin MedicationStatement (ATC A10AB03)
EMPTY = "cli-empty"  # a Patient with nothing else
UNKNOWN = "cli-unknown"  # never loaded
OPEN_PORK = "cli-open-pork"
OPEN_EMPTY = "cli-open-empty"
PORK_SUMMARY = "Porcine insulin, no sign of antibody resistance: switch to human insulin 10 % lower"


@pytest.fixture(scope="session")
def cli_server(fhir_server: LocalFhirServer) -> LocalFhirServer:
    """The token-protected server with PORK and EMPTY loaded."""
    fhir_server.load_bundle(transaction(patient(PORK), porcine_statement(PORK, f"{PORK}-ms"), patient(EMPTY)))
    return fhir_server


@pytest.fixture(scope="session")
def open_cli_server(open_fhir_server: LocalFhirServer) -> LocalFhirServer:
    """The open server with OPEN_PORK and OPEN_EMPTY loaded."""
    open_fhir_server.load_bundle(
        transaction(patient(OPEN_PORK), porcine_statement(OPEN_PORK, f"{OPEN_PORK}-ms"), patient(OPEN_EMPTY))
    )
    return open_fhir_server


@pytest.fixture(autouse=True)
def quick_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unreachable servers fail fast; settings come from the environment as for a real user."""
    monkeypatch.setenv("CDS_HOOKS_FHIR_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("CDS_HOOKS_FHIR_READ_TIMEOUT", "10")
    monkeypatch.setenv("CDS_HOOKS_FHIR_RETRIES", "0")
