"""Pytest plugin: a real FHIR R4 server (sekmet-fhir) for the whole test session.

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["tests.fhir_server_plugin"]``.
The server is installed into its own virtualenv on first use (``scripts/install-fhir-server.sh``),
started once per session on a free port with its database in a temporary directory, and stopped
at the end of the session, so nothing is left running.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from cds_hooks.testing.fhir_test_server import FhirServerError, LocalFhirServer, ensure_installed

_SERVER_FIXTURES = ("fhir_server", "open_fhir_server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a server fixture `fhir_server` (select with ``-m fhir_server``)."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in _SERVER_FIXTURES):
            item.add_marker(pytest.mark.fhir_server)


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, tokens: list[str] | None) -> LocalFhirServer:
    try:
        venv = ensure_installed()
        return LocalFhirServer(tmp_path_factory.mktemp(name), tokens=tokens, venv=venv).start()
    except FhirServerError as e:
        pytest.fail(f"could not start the sekmet-fhir test server: {e}", pytrace=False)


@pytest.fixture(scope="session")
def fhir_server_token() -> str:
    """The static bearer token `fhir_server` requires."""
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def fhir_server(
    tmp_path_factory: pytest.TempPathFactory, fhir_server_token: str
) -> Iterator[LocalFhirServer]:
    """A running sekmet-fhir server that requires ``Authorization: Bearer <fhir_server_token>``.

    Shared by the whole session: load data with ids unique to your test (``PUT Type/id``).
    """
    server = _start(tmp_path_factory, "fhir-server", [fhir_server_token])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def open_fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFhirServer]:
    """A running sekmet-fhir server without authentication (as the CDS Hooks Sandbox needs it)."""
    server = _start(tmp_path_factory, "open-fhir-server", None)
    try:
        yield server
    finally:
        server.stop()
