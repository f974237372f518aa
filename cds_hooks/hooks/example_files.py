"""Where the example patients are: shipped inside the package and in a source checkout. The demo loads
them into a FHIR server; the warm-up evaluates them so a worker's first request meets warm classifiers."""

from __future__ import annotations

import contextlib
import os
from importlib import resources
from pathlib import Path

__all__ = ["EXAMPLES_DIR_ENV", "examples_dir"]

EXAMPLES_DIR_ENV = "CDS_HOOKS_EXAMPLES_DIR"


def examples_dir() -> Path:
    """The example patients: ``$CDS_HOOKS_EXAMPLES_DIR``, the copy inside an installed package
    (``cds_hooks/examples``), or ``examples/`` of a source checkout — the first with a manifest."""
    candidates: list[Path] = []
    configured = os.environ.get(EXAMPLES_DIR_ENV)
    if configured:
        candidates.append(Path(configured))
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        candidates.append(Path(str(resources.files("cds_hooks") / "examples")))
    candidates.append(Path(__file__).resolve().parents[2] / "examples")
    for candidate in candidates:
        if (candidate / "manifest.json").is_file():
            return candidate
    raise FileNotFoundError(
        "no example patients found (looked in "
        + ", ".join(str(c) for c in candidates)
        + f"); set {EXAMPLES_DIR_ENV} to a folder with manifest.json"
    )
