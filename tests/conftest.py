"""Shared fixtures: an app on a fresh SQLite database, its test client, and the real FHIR server plugin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.process.config import Settings

pytest_plugins = [
    "tests.fhir_server_plugin",
    "tests.postgres_plugin",
    "tests.browser_plugin",
    "tests.fuzz_report_plugin",
    # The hazard log's evidence (docs/safety/hazards.toml) must run: a session that skips it fails.
    "tests.safety.plugin",
]


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test app. The test FHIR servers run on loopback, so private addresses are allowed
    unless a test says otherwise (the SSRF tests do)."""
    overrides.setdefault("fhir_allow_private", True)
    return Settings.from_env({}, data_dir=tmp_path / "data", **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, fhir_read_timeout=5.0, fhir_connect_timeout=2.0)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings, knowledge=default_knowledge())
    yield application
    application.extensions["cds_hooks"].store.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
