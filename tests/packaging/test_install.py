"""`pip install .` (non-editable) ships the knowledge files, and the console script runs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_the_package_and_every_knowledge_file(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    knowledge = [p.relative_to(ROOT).as_posix() for p in (ROOT / "knowledge").rglob("*") if p.is_file()]
    assert knowledge, "knowledge/ is empty"
    for path in knowledge:
        assert f"cds_hooks/{path}" in names, path
    assert "cds_hooks/app.py" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_console_script_help():
    result = subprocess.run(
        [sys.executable, "-m", "cds_hooks", "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "--port" in result.stdout and "--host" in result.stdout
