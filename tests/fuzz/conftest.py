"""Fuzz suite settings: a bounded number of examples in CI, more with CDS_HOOKS_FUZZ_EXAMPLES."""

from __future__ import annotations

import os

import pytest
from flask import Flask
from hypothesis import settings

from cds_hooks.app import create_app
from cds_hooks.clinical.knowledge import default_knowledge
from tests.conftest import make_settings

# Examples per schemathesis operation and per hypothesis test. The CI default generates > 2,000 cases;
# `CDS_HOOKS_FUZZ_EXAMPLES=5000 scripts/test.sh tests/fuzz` is the long run (docs/security.md).
EXAMPLES = int(os.environ.get("CDS_HOOKS_FUZZ_EXAMPLES", "400"))

# In CI the same cases run every time (no flaky red builds); a developer's run explores new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The real app; fallback fetches may only go to a closed loopback port (no DNS, no network)."""
    settings = make_settings(
        tmp_path_factory.mktemp("fuzz"),
        fhir_allow_private=False,
        fhir_allowlist="http://127.0.0.1:9/",
        fhir_connect_timeout=0.2,
        fhir_read_timeout=0.5,
        fhir_retries=0,
        max_body_bytes=256 * 1024,
        log_level="ERROR",
    )
    return create_app(settings, knowledge=default_knowledge())
