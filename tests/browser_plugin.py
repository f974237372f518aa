"""One headless Chromium per test process, shared by every real-browser test (Sandbox, SMART app,
dashboard, source pages).

Playwright's sync API runs its own event loop: a second ``sync_playwright()`` in the same process fails
("Sync API inside the asyncio loop"), so the browser is a session fixture here, never started per module.
Debian's ``chromium`` (scripts/install-chromium.sh), never a downloaded build; a test that needs it is
skipped with the reason when it is missing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ENV = "CDS_HOOKS_CHROMIUM"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No internet here: without these, Chromium's own background connections are refused and logged.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Pages under test only talk to loopback; the Sandbox's public default services fail at once.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def chromium_path() -> Path | None:
    candidate = Path(os.environ.get(CHROMIUM_ENV) or "/usr/bin/chromium")
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    """The shared Playwright ``Browser``; tests open their own contexts or pages on it."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if chromium_path() is None:
        subprocess.run(["bash", str(REPO / "scripts" / "install-chromium.sh")], check=False, timeout=900)
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            f"Chromium not found at {os.environ.get(CHROMIUM_ENV) or '/usr/bin/chromium'}: "
            "scripts/install-chromium.sh installs Debian's chromium package (as root); "
            f"or set {CHROMIUM_ENV}"
        )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
