"""Run one of scripts/install-*.sh for a test that needs a tool outside .venv (HealthChain, Node, axe-core),
and skip the test with the script's own reason when it fails: the skip says why, the run goes on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def install_or_skip(script: str, installed: Path, what: str, tail: int = 500) -> None:
    """Run ``scripts/<script>``; skip unless it succeeded and ``installed`` exists."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / script)], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0 or not installed.exists():
        pytest.skip(f"{what} could not be installed (scripts/{script}): {result.stderr[-tail:]}")
